{#- Grain: one row per invoiced work order with balance_due > 0, aged to `as_of_date` (dbt var,
    YYYY-MM-DD; unset = today in the shop's zone). A work order invoiced after as_of_date was not
    yet owed on that day: it is left out. -#}
{%- set as_of = var('as_of_date', none) -%}
{%- if as_of is not none and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of | string) -%}
    {{ exceptions.raise_compiler_error("var as_of_date must be a date YYYY-MM-DD (e.g. --vars '{as_of_date: 2025-06-30}'), got " ~ (as_of | string)) }}
{%- endif -%}
with

work_orders as (

    select * from {{ ref('int_work_orders_localized') }}
    where invoiced_at is not null
        and balance_due > 0

),

aged as (

    select
        work_order_id,
        shop_id,
        customer_id,
        vehicle_id,
        work_order_number,
        invoiced_on,
        total,
        amount_paid,
        balance_due,
        {% if as_of is none -%}
        {{ autosync.local_today('shop_timezone') }}
        {%- else -%}
        {{ autosync.date_literal(as_of) }}
        {%- endif %} as as_of_date

    from work_orders

),

final as (

    select
        work_order_id,
        shop_id,
        customer_id,
        vehicle_id,
        work_order_number,
        invoiced_on,
        as_of_date,
        {{ autosync.days_between('invoiced_on', 'as_of_date') }} as age_days,
        case
            when {{ autosync.days_between('invoiced_on', 'as_of_date') }} <= 30 then '0-30'
            when {{ autosync.days_between('invoiced_on', 'as_of_date') }} <= 60 then '31-60'
            when {{ autosync.days_between('invoiced_on', 'as_of_date') }} <= 90 then '61-90'
            else '90+'
        end as age_bucket,
        total,
        amount_paid,
        balance_due

    from aged
    where invoiced_on <= as_of_date

)

select * from final

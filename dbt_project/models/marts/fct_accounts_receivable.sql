{#- Grain: one row per invoiced work order a customer still owes on at `as_of_date` (dbt var,
    YYYY-MM-DD; unset = today in the shop's zone). amount_owed = total - the succeeded payments
    created on or before as_of_date. A refund is money the shop gave back, not money owed: it does
    not reopen an invoice (the API's balance_due rises after one, so it is only a reference column).
    A work order invoiced after as_of_date was not yet owed on that day: it is left out. -#}
{%- set as_of = var('as_of_date', none) -%}
{%- if as_of is not none and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of | string) -%}
    {{ exceptions.raise_compiler_error("var as_of_date must be a date YYYY-MM-DD (e.g. --vars '{as_of_date: 2025-06-30}'), got " ~ (as_of | string)) }}
{%- endif -%}
with
{%- if as_of is none %}

{# Today once per shop and zone, not per row: a zone read from a column is set up again for every
    row (on DuckDB that was 1 s of CPU over 200,000 work orders, against milliseconds here). -#}
shop_today as (

    select
        shop_id,
        shop_timezone,
        {{ autosync.local_today('shop_timezone') }} as as_of_date

    from (
        select distinct shop_id, shop_timezone from {{ ref('int_work_orders_localized') }}
    ) as shop_zones

),
{%- endif %}

work_orders as (

    select
        work_orders.*,
        {% if as_of is none -%}
        shop_today.as_of_date
        {%- else -%}
        {{ autosync.date_literal(as_of) }} as as_of_date
        {%- endif %}

    from {{ ref('int_work_orders_localized') }} as work_orders
    {% if as_of is none -%}
    inner join shop_today
        on work_orders.shop_id = shop_today.shop_id
        and work_orders.shop_timezone = shop_today.shop_timezone
    {% endif -%}
    where work_orders.invoiced_at is not null

),

invoiced as (

    select * from work_orders
    where invoiced_on <= as_of_date

),

{# fct_payments holds the live payments of live work orders, with their shop-local date. -#}
payments_until_as_of as (

    select
        invoiced.work_order_id,
        sum(payments.amount) as amount_paid

    from invoiced
    inner join {{ ref('fct_payments') }} as payments
        on invoiced.work_order_id = payments.work_order_id
    where payments.is_succeeded
        and payments.payment_date <= invoiced.as_of_date
    group by 1

),

owed as (

    select
        invoiced.*,
        coalesce(payments_until_as_of.amount_paid, 0) as paid_by_as_of_date,
        invoiced.total - coalesce(payments_until_as_of.amount_paid, 0) as owed_amount

    from invoiced
    left join payments_until_as_of
        on invoiced.work_order_id = payments_until_as_of.work_order_id

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
        {{ autosync.round_money('paid_by_as_of_date') }} as amount_paid,
        {{ autosync.round_money('owed_amount') }} as amount_owed,
        balance_due

    from owed
    where owed_amount > 0

)

select * from final

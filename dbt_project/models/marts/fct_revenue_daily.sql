{#- Grain: shop_id, date (the shop's local calendar date). Invoices, payments and refunds are each
    aggregated to (shop_id, date) first, then joined on the union of their keys: no fan-out, linear in
    the inputs. Incremental (macros/incremental.sql): a build rebuilds the shop-days a change touched. -#}
{{ config(
    materialized='incremental',
    unique_key=['shop_id', 'date'],
    incremental_strategy=autosync.incremental_strategy(),
    on_schema_change='fail',
    pre_hook="{{ autosync.incremental_delete() }}",
    post_hook="{{ autosync.incremental_commit() }}"
) }}
{%- set window = autosync.incremental_window('revenue_days') %}
{{ autosync.incremental_window_marker(window) }}
{% if model.resource_type != 'unit_test' -%}
-- depends_on: {{ ref('stg_autosync__work_orders') }}
-- depends_on: {{ ref('stg_autosync__payments') }}
{% endif -%}
with


work_orders as (

    select work_orders.* from {{ ref('int_work_orders_localized') }} as work_orders
    {%- if not window.full %}
    where {{ autosync.touched_days(window, 'work_orders.shop_id', 'work_orders.invoiced_on') }}
    {%- endif %}

),

line_items_per_work_order as (

    select line_items.* from {{ ref('int_line_items_aggregated_to_work_orders') }} as line_items
    {%- if not window.full %}
    where {{ autosync.touched_days(window, 'line_items.shop_id', 'line_items.work_order_invoiced_on') }}
    {%- endif %}

),

payments as (

    select * from {{ ref('fct_payments') }}

),

refunds as (

    select * from {{ ref('stg_autosync__refunds') }}

),

shop_timezones as (

    select * from {{ ref('int_shop_timezones') }}

),

invoiced_daily as (

    select
        work_orders.shop_id,
        work_orders.invoiced_on as date,
        count(*) as work_orders_invoiced,
        sum(work_orders.labor_total) as labor_revenue,
        sum(work_orders.parts_total) as parts_revenue,
        sum(work_orders.fees_total) as fees_revenue,
        sum(work_orders.subtotal) as invoiced_revenue,
        sum(work_orders.tax_total) as invoiced_tax,
        sum(work_orders.total) as invoiced_total,
        sum(coalesce(line_items_per_work_order.parts_cost, 0)) as parts_cost

    from work_orders
    left join line_items_per_work_order
        on work_orders.work_order_id = line_items_per_work_order.work_order_id
    where work_orders.invoiced_at is not null
    group by 1, 2

),

payments_daily as (

    select
        shop_id,
        payment_date as date,
        sum(amount) as payments_collected

    from payments
    where payment_status = 'succeeded'
    {%- if not window.full %}
        and {{ autosync.touched_days(window, 'payments.shop_id', 'payments.payment_date') }}
    {%- endif %}
    group by 1, 2

),

{# Refunds count on their own date; only refunds of payments that are in fct_payments (the
    payment and its work order still exist at the source). -#}
refunds_daily as (

    select
        refunds.shop_id,
        {{ autosync.local_date('refunds.refunded_at', autosync.timezone_or_default('shop_timezones.timezone')) }}
            as date,
        sum(refunds.refund_amount) as refunds

    from refunds
    left join shop_timezones
        on refunds.shop_id = shop_timezones.shop_id
    where refunds.payment_id in (select payments.payment_id from payments)
    group by 1, 2

),

shop_days as (

    select shop_id, date from invoiced_daily
    union distinct
    select shop_id, date from payments_daily
    union distinct
    select shop_id, date from refunds_daily

),
{%- if not window.full %}

{# refunds_daily covers every day (refunds are few); the rows written are the touched days only. -#}
rebuilt_days as (

    select shop_days.shop_id, shop_days.date from shop_days
    where {{ autosync.touched_days(window, 'shop_days.shop_id', 'shop_days.date') }}

),
{%- endif %}

final as (

    select
        shop_days.shop_id,
        shop_days.date,
        coalesce(invoiced_daily.work_orders_invoiced, 0) as work_orders_invoiced,
        {{ autosync.round_money('coalesce(invoiced_daily.labor_revenue, 0)') }} as labor_revenue,
        {{ autosync.round_money('coalesce(invoiced_daily.parts_revenue, 0)') }} as parts_revenue,
        {{ autosync.round_money('coalesce(invoiced_daily.fees_revenue, 0)') }} as fees_revenue,
        {{ autosync.round_money('coalesce(invoiced_daily.invoiced_revenue, 0)') }} as invoiced_revenue,
        {{ autosync.round_money('coalesce(invoiced_daily.invoiced_tax, 0)') }} as invoiced_tax,
        {{ autosync.round_money('coalesce(invoiced_daily.invoiced_total, 0)') }} as invoiced_total,
        cast(
            {{ autosync.money_divide('invoiced_daily.invoiced_revenue', 'invoiced_daily.work_orders_invoiced') }}
            as {{ autosync.type_money() }}
        ) as average_repair_order,
        {{ autosync.round_money('coalesce(invoiced_daily.parts_cost, 0)') }} as parts_cost,
        {{ autosync.round_money('coalesce(invoiced_daily.parts_revenue, 0) - coalesce(invoiced_daily.parts_cost, 0)') }}
            as parts_gross_profit,
        {{ autosync.round_money('coalesce(payments_daily.payments_collected, 0)') }} as payments_collected,
        {{ autosync.round_money('coalesce(refunds_daily.refunds, 0)') }} as refunds,
        {{ autosync.round_money(
            'coalesce(payments_daily.payments_collected, 0) - coalesce(refunds_daily.refunds, 0)'
        ) }} as net_collected

    from {{ 'shop_days' if window.full else 'rebuilt_days' }} as shop_days
    left join invoiced_daily
        on shop_days.shop_id = invoiced_daily.shop_id
        and shop_days.date = invoiced_daily.date
    left join payments_daily
        on shop_days.shop_id = payments_daily.shop_id
        and shop_days.date = payments_daily.date
    left join refunds_daily
        on shop_days.shop_id = refunds_daily.shop_id
        and shop_days.date = refunds_daily.date

)

select * from final

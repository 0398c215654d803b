{#- Incremental (macros/incremental.sql): a build rebuilds the work orders loaded or marked deleted since
    the last one. -#}
{{ config(
    materialized='incremental',
    unique_key='work_order_id',
    incremental_strategy=autosync.incremental_strategy(),
    on_schema_change='fail',
    pre_hook="{{ autosync.incremental_delete() }}",
    post_hook="{{ autosync.incremental_commit() }}"
) }}
{%- set window = autosync.incremental_window('work_orders') %}
{{ autosync.incremental_window_marker(window) }}
with

work_orders as (

    select work_orders.* from {{ ref('int_work_orders_localized') }} as work_orders
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'work_orders') }}
    {%- endif %}

),

jobs_per_work_order as (

    select work_orders.* from {{ ref('int_jobs_aggregated_to_work_orders') }} as work_orders
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'work_orders') }}
    {%- endif %}

),

line_items_per_work_order as (

    select work_orders.* from {{ ref('int_line_items_aggregated_to_work_orders') }} as work_orders
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'work_orders') }}
    {%- endif %}

),

final as (

    select
        work_orders.work_order_id,
        work_orders.shop_id,
        work_orders.work_order_number,
        work_orders.customer_id,
        work_orders.vehicle_id,
        work_orders.technician_id,
        work_orders.service_advisor_id,
        work_orders.work_order_status,
        work_orders.mileage_in,
        work_orders.labor_total,
        work_orders.parts_total,
        work_orders.fees_total,
        work_orders.subtotal,
        work_orders.tax_total,
        work_orders.total,
        work_orders.amount_paid,
        work_orders.balance_due,
        {{ autosync.round_money('coalesce(line_items_per_work_order.parts_cost, 0)') }} as parts_cost,
        {{ autosync.round_money('work_orders.parts_total - coalesce(line_items_per_work_order.parts_cost, 0)') }}
            as parts_gross_profit,
        cast(coalesce(line_items_per_work_order.billed_labor_hours, 0) as {{ autosync.type_measure() }})
            as billed_labor_hours,
        {{ autosync.round_money('coalesce(line_items_per_work_order.labor_cost, 0)') }} as labor_cost,
        coalesce(line_items_per_work_order.labor_items_without_rate, 0) = 0 as is_labor_cost_complete,
        coalesce(jobs_per_work_order.jobs_count, 0) as jobs_count,
        coalesce(jobs_per_work_order.declined_jobs_count, 0) as declined_jobs_count,
        coalesce(jobs_per_work_order.completed_jobs_count, 0) as completed_jobs_count,
        work_orders.created_at,
        work_orders.started_at,
        work_orders.completed_at,
        work_orders.invoiced_at,
        work_orders.updated_at,
        work_orders.shop_timezone,
        work_orders.created_on,
        work_orders.completed_on,
        work_orders.invoiced_on,
        {{ autosync.hours_between('work_orders.started_at', 'work_orders.completed_at') }} as cycle_time_hours,
        work_orders.completed_at is not null as is_completed,
        work_orders.invoiced_at is not null as is_invoiced

    from work_orders
    left join jobs_per_work_order
        on work_orders.work_order_id = jobs_per_work_order.work_order_id
    left join line_items_per_work_order
        on work_orders.work_order_id = line_items_per_work_order.work_order_id

)

select * from final

{#- Line items of live work orders, with their job's status and their work order's milestones.
    Every join is many-to-one on a primary key, so the row count is the line items'.
    A table, not a view: fct_line_items, int_line_items_aggregated_to_work_orders,
    fct_technician_throughput_weekly and this model's own tests all read it, and as a view each of
    them would join the million line items to their jobs, work orders and technicians again.
    Incremental (macros/incremental.sql): a build rebuilds the line items of the work orders
    loaded or marked deleted since the last one. -#}
{{ config(
    materialized='incremental',
    unique_key='line_item_id',
    incremental_strategy=autosync.incremental_strategy(),
    on_schema_change='fail',
    pre_hook="{{ autosync.incremental_delete() }}",
    post_hook="{{ autosync.incremental_commit() }}"
) }}
{%- set window = autosync.incremental_window('work_orders') %}
{{ autosync.incremental_window_marker(window) }}
with

line_items as (

    select line_items.* from {{ ref('stg_autosync__line_items') }} as line_items
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'line_items') }}
    {%- endif %}

),

jobs as (

    select jobs.* from {{ ref('stg_autosync__jobs') }} as jobs
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'jobs') }}
    {%- endif %}

),

live_work_orders as (

    select work_orders.* from {{ ref('int_work_orders_localized') }} as work_orders
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'work_orders') }}
    {%- endif %}

),

{# The technician's current hourly rate (what labor costs the shop); a deleted employee has none. -#}
live_employees as (

    select employee_id, hourly_rate from {{ ref('stg_autosync__employees') }}
    where not is_deleted

),

enriched as (

    select
        line_items.line_item_id,
        line_items.shop_id,
        line_items.work_order_id,
        line_items.job_id,
        jobs.job_status,
        coalesce(jobs.is_declined, false) as is_on_declined_job,
        line_items.line_item_type,
        line_items.description,
        line_items.technician_id,
        line_items.hours,
        line_items.labor_rate,
        line_items.part_id,
        line_items.part_number,
        line_items.quantity,
        line_items.unit_cost,
        line_items.unit_price,
        line_items.is_taxable,
        line_items.total,
        case
            when line_items.line_item_type = 'part'
                then line_items.quantity * line_items.unit_cost
        end as part_cost,
        live_employees.hourly_rate as technician_hourly_rate,
        case
            when line_items.line_item_type = 'labor'
                then line_items.hours * coalesce(live_employees.hourly_rate, 0)
        end as labor_cost,
        line_items.line_item_type = 'labor' and live_employees.hourly_rate is null as is_labor_cost_missing,
        live_work_orders.completed_at as work_order_completed_at,
        live_work_orders.invoiced_at as work_order_invoiced_at,
        live_work_orders.completed_on as work_order_completed_on,
        live_work_orders.invoiced_on as work_order_invoiced_on

    from line_items
    inner join live_work_orders
        on line_items.work_order_id = live_work_orders.work_order_id
    left join jobs
        on line_items.job_id = jobs.job_id
    left join live_employees
        on line_items.technician_id = live_employees.employee_id

)

select * from enriched

{#- Grain: shop_id, technician_id, week_start (ISO Monday of the shop's local calendar). Work orders count for their own
    technician, jobs for the job's technician and labor for the line item's technician, all in the
    week the work order was completed; each is aggregated to the grain before the join.
    Incremental (macros/incremental.sql): a build rebuilds the shop-weeks a change touched. -#}
{{ config(
    materialized='incremental',
    unique_key=['shop_id', 'technician_id', 'week_start'],
    incremental_strategy=autosync.incremental_strategy(),
    on_schema_change='fail',
    pre_hook="{{ autosync.incremental_delete() }}",
    post_hook="{{ autosync.incremental_commit() }}"
) }}
{%- set window = autosync.incremental_window('weeks') %}
{{ autosync.incremental_window_marker(window) }}
{% if model.resource_type != 'unit_test' -%}
-- depends_on: {{ ref('stg_autosync__work_orders') }}
-- depends_on: {{ ref('int_shop_timezones') }}
{% endif -%}
with

completed_work_orders as (

    select work_orders.* from {{ ref('fct_work_orders') }} as work_orders
    where work_orders.completed_at is not null
    {%- if not window.full %}
        and {{ autosync.touched_weeks(window, 'work_orders.shop_id', 'work_orders.completed_on') }}
    {%- endif %}

),

jobs as (

    select jobs.* from {{ ref('int_jobs_enriched') }} as jobs
    {%- if not window.full %}
    where jobs.work_order_completed_on is not null
        and {{ autosync.touched_weeks(window, 'jobs.shop_id', 'jobs.work_order_completed_on') }}
    {%- endif %}

),

line_items as (

    select line_items.* from {{ ref('int_line_items_enriched') }} as line_items
    {%- if not window.full %}
    where line_items.work_order_completed_on is not null
        and {{ autosync.touched_weeks(window, 'line_items.shop_id', 'line_items.work_order_completed_on') }}
    {%- endif %}

),

employees as (

    select * from {{ ref('dim_employees') }}

),

work_orders_weekly as (

    select
        shop_id,
        technician_id,
        {{ autosync.week_start('completed_on') }} as week_start,
        count(*) as work_orders_completed,
        avg(cycle_time_hours) as avg_cycle_time_hours

    from completed_work_orders
    where technician_id is not null
    group by 1, 2, 3

),

jobs_weekly as (

    select
        shop_id,
        technician_id,
        {{ autosync.week_start('work_order_completed_on') }} as week_start,
        count(*) as jobs_completed

    from jobs
    where job_status = 'completed'
        and work_order_completed_at is not null
        and technician_id is not null
    group by 1, 2, 3

),

labor_weekly as (

    select
        shop_id,
        technician_id,
        {{ autosync.week_start('work_order_completed_on') }} as week_start,
        sum(hours) as billed_labor_hours,
        sum(total) as labor_revenue

    from line_items
    where line_item_type = 'labor'
        and not is_on_declined_job
        and work_order_completed_at is not null
        and technician_id is not null
    group by 1, 2, 3

),

technician_weeks as (

    select shop_id, technician_id, week_start from work_orders_weekly
    union distinct
    select shop_id, technician_id, week_start from jobs_weekly
    union distinct
    select shop_id, technician_id, week_start from labor_weekly

),

final as (

    select
        technician_weeks.shop_id,
        technician_weeks.technician_id,
        technician_weeks.week_start,
        employees.employee_name as technician_name,
        coalesce(work_orders_weekly.work_orders_completed, 0) as work_orders_completed,
        coalesce(jobs_weekly.jobs_completed, 0) as jobs_completed,
        cast(coalesce(labor_weekly.billed_labor_hours, 0) as {{ autosync.type_measure() }}) as billed_labor_hours,
        {{ autosync.round_money('coalesce(labor_weekly.labor_revenue, 0)') }} as labor_revenue,
        work_orders_weekly.avg_cycle_time_hours

    from technician_weeks
    left join work_orders_weekly
        on technician_weeks.shop_id = work_orders_weekly.shop_id
        and technician_weeks.technician_id = work_orders_weekly.technician_id
        and technician_weeks.week_start = work_orders_weekly.week_start
    left join jobs_weekly
        on technician_weeks.shop_id = jobs_weekly.shop_id
        and technician_weeks.technician_id = jobs_weekly.technician_id
        and technician_weeks.week_start = jobs_weekly.week_start
    left join labor_weekly
        on technician_weeks.shop_id = labor_weekly.shop_id
        and technician_weeks.technician_id = labor_weekly.technician_id
        and technician_weeks.week_start = labor_weekly.week_start
    left join employees
        on technician_weeks.technician_id = employees.employee_id

)

select * from final

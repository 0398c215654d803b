{#- Incremental (macros/incremental.sql): a build rebuilds the line items of the work orders
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

    select line_items.* from {{ ref('int_line_items_enriched') }} as line_items
    {%- if not window.full %}
    where {{ autosync.touched_work_orders(window, 'line_items') }}
    {%- endif %}

),

final as (

    select
        line_item_id,
        shop_id,
        work_order_id,
        job_id,
        job_status,
        is_on_declined_job,
        line_item_type,
        description,
        technician_id,
        hours,
        labor_rate,
        part_id,
        part_number,
        quantity,
        unit_cost,
        unit_price,
        is_taxable,
        total,
        part_cost,
        work_order_completed_at,
        work_order_invoiced_at,
        technician_hourly_rate,
        labor_cost,
        work_order_completed_on,
        work_order_invoiced_on

    from line_items

)

select * from final

{#- Grain: one row per job of a live work order: its status, totals, labor hours and costs, the
    inspection item that recommended it, and whether it is a comeback (the same repair sold on the
    same vehicle 1 to 90 local days earlier). -#}
with

work_orders as (

    select * from {{ ref('int_work_orders_localized') }}

),

jobs as (

    select
        jobs.*,
        jobs.job_status in ('approved', 'completed') as is_sold,
        {{ autosync.normalized_name('jobs.job_name') }} as name_key,
        work_orders.customer_id,
        work_orders.vehicle_id,
        work_orders.invoiced_on as work_order_invoiced_on

    from {{ ref('int_jobs_enriched') }} as jobs
    inner join work_orders
        on jobs.work_order_id = work_orders.work_order_id

),

{# The item that recommended the job: the latest inspection response first, then the lowest id. -#}
recommending_items as (

    select
        items.job_id,
        items.inspection_item_id,
        row_number() over (
            partition by items.job_id
            order by inspections.responded_at desc nulls last, items.inspection_item_id asc
        ) as item_rank

    from {{ ref('stg_autosync__inspection_items') }} as items
    inner join {{ ref('int_inspection_items_aggregated_to_inspections') }} as inspections
        on items.inspection_id = inspections.inspection_id
    where items.job_id is not null

),

{# Sold work on invoiced work orders with a vehicle: the jobs a comeback is looked for among. -#}
sold_invoiced as (

    select
        job_id,
        work_order_id,
        vehicle_id,
        name_key,
        work_order_invoiced_on

    from jobs
    where is_sold
        and work_order_invoiced_on is not null
        and vehicle_id is not null

),

comebacks as (

    select distinct this_job.job_id

    from sold_invoiced as this_job
    inner join sold_invoiced as earlier_job
        on this_job.vehicle_id = earlier_job.vehicle_id
        and this_job.name_key = earlier_job.name_key
        and this_job.work_order_id <> earlier_job.work_order_id
        and this_job.work_order_invoiced_on > earlier_job.work_order_invoiced_on
        and this_job.work_order_invoiced_on
        <= cast({{ dbt.dateadd('day', 90, 'earlier_job.work_order_invoiced_on') }} as date)

),

line_items_per_job as (

    select * from {{ ref('int_line_items_aggregated_to_jobs') }}

),

final as (

    select
        jobs.job_id,
        jobs.shop_id,
        jobs.work_order_id,
        jobs.customer_id,
        jobs.vehicle_id,
        jobs.technician_id,
        jobs.service_advisor_id,
        jobs.job_name,
        jobs.job_status,
        jobs.is_sold,
        jobs.is_declined,
        jobs.approved_at,
        jobs.labor_total,
        jobs.parts_total,
        jobs.total,
        cast(coalesce(line_items_per_job.labor_hours, 0) as {{ autosync.type_measure() }}) as labor_hours,
        coalesce(line_items_per_job.labor_cost, 0) as labor_cost,
        coalesce(line_items_per_job.labor_items_without_rate, 0) = 0 as labor_cost_complete,
        coalesce(line_items_per_job.parts_cost, 0) as parts_cost,
        jobs.work_order_created_on,
        jobs.work_order_invoiced_on,
        recommending_items.inspection_item_id,
        comebacks.job_id is not null as is_comeback

    from jobs
    left join line_items_per_job
        on jobs.job_id = line_items_per_job.job_id
    left join recommending_items
        on jobs.job_id = recommending_items.job_id
        and recommending_items.item_rank = 1
    left join comebacks
        on jobs.job_id = comebacks.job_id

)

select * from final

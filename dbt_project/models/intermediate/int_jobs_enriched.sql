{#- Jobs of live work orders with their work order's milestones (many-to-one join). -#}
with

jobs as (

    select * from {{ ref('stg_autosync__jobs') }}

),

live_work_orders as (

    select * from {{ ref('int_work_orders_localized') }}

),

enriched as (

    select
        jobs.job_id,
        jobs.shop_id,
        jobs.work_order_id,
        jobs.job_name,
        jobs.technician_id,
        jobs.job_status,
        jobs.is_declined,
        jobs.approved_at,
        jobs.labor_total,
        jobs.parts_total,
        jobs.total,
        live_work_orders.completed_at as work_order_completed_at,
        live_work_orders.invoiced_at as work_order_invoiced_at,
        live_work_orders.completed_on as work_order_completed_on,
        live_work_orders.created_on as work_order_created_on,
        live_work_orders.service_advisor_id

    from jobs
    inner join live_work_orders
        on jobs.work_order_id = live_work_orders.work_order_id

)

select * from enriched

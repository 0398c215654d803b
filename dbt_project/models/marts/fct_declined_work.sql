{#- Grain: one row per declined job (source = 'job') or declined inspection item
    (source = 'inspection_item'): the follow-up list of work customers said no to. -#}
with

work_orders as (

    select * from {{ ref('int_work_orders_localized') }}

),

declined_jobs as (

    select
        'job' as source,
        jobs.job_id as source_id,
        jobs.shop_id,
        jobs.work_order_id,
        work_orders.customer_id,
        work_orders.vehicle_id,
        jobs.job_name as description,
        jobs.work_order_created_on as declined_on,
        jobs.total as amount

    from {{ ref('int_jobs_enriched') }} as jobs
    inner join work_orders
        on jobs.work_order_id = work_orders.work_order_id
    where jobs.job_status = 'declined'

),

declined_items as (

    select
        'inspection_item' as source,
        items.inspection_item_id as source_id,
        inspections.shop_id,
        inspections.work_order_id,
        work_orders.customer_id,
        coalesce(inspections.vehicle_id, work_orders.vehicle_id) as vehicle_id,
        items.item_name as description,
        inspections.responded_on as declined_on,
        items.estimate_amount as amount

    from {{ ref('stg_autosync__inspection_items') }} as items
    inner join {{ ref('int_inspection_items_aggregated_to_inspections') }} as inspections
        on items.inspection_id = inspections.inspection_id
    left join work_orders
        on inspections.work_order_id = work_orders.work_order_id
    where items.approval_status = 'declined'

),

declined as (

    select * from declined_jobs
    union all
    select * from declined_items

),

{# The latest local creation date of a work order per vehicle: the vehicle came back after a
    decline when it is later than the decline's date. -#}
last_visits as (

    select
        vehicle_id,
        max(created_on) as last_work_order_created_on

    from work_orders
    where vehicle_id is not null
    group by 1

),

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        declined.source,
        declined.source_id,
        declined.shop_id,
        declined.work_order_id,
        declined.customer_id,
        declined.vehicle_id,
        declined.description,
        declined.declined_on,
        {{ autosync.round_money('declined.amount') }} as amount,
        customers.customer_name,
        customers.phone as customer_phone,
        customers.email as customer_email,
        coalesce(last_visits.last_work_order_created_on > declined.declined_on, false) as returned_since

    from declined
    left join customers
        on declined.customer_id = customers.customer_id
    left join last_visits
        on declined.vehicle_id = last_visits.vehicle_id

)

select * from final

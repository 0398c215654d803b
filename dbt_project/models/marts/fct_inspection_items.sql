with

items as (

    select * from {{ ref('stg_autosync__inspection_items') }}

),

live_inspections as (

    select * from {{ ref('int_inspection_items_aggregated_to_inspections') }}

),

photos_per_item as (

    select
        inspection_item_id,
        count(*) as photos_count

    from {{ ref('stg_autosync__inspection_photos') }}
    group by inspection_item_id

),

final as (

    select
        items.inspection_item_id,
        items.inspection_id,
        live_inspections.shop_id,
        live_inspections.work_order_id,
        live_inspections.vehicle_id,
        live_inspections.technician_id,
        items.job_id,
        items.item_name,
        items.item_category,
        items.item_condition,
        items.item_notes,
        items.approval_status,
        items.estimate_amount,
        items.item_condition in ('yellow', 'red') as is_recommended,
        items.item_condition in ('yellow', 'red') and items.approval_status = 'approved' as is_approved,
        coalesce(photos_per_item.photos_count, 0) as photos_count,
        live_inspections.inspection_status,
        live_inspections.sent_at as inspection_sent_at,
        items.approved_at

    from items
    inner join live_inspections
        on items.inspection_id = live_inspections.inspection_id
    left join photos_per_item
        on items.inspection_item_id = photos_per_item.inspection_item_id

)

select * from final

{#- Grain: one row per live inspection (neither it nor its work order deleted at the source), with
    its items counted by outcome and their amounts. Recommended = condition yellow or red. -#}
with

inspections as (

    select * from {{ ref('int_inspection_items_aggregated_to_inspections') }}

),

final as (

    select
        inspection_id,
        shop_id,
        work_order_id,
        vehicle_id,
        technician_id,
        inspection_status,
        created_at,
        sent_at,
        responded_at,
        sent_on,
        responded_on,
        sent_at is not null as is_sent,
        items_inspected,
        items_recommended,
        items_approved,
        items_declined,
        items_pending,
        red_items,
        red_items_approved,
        {{ autosync.round_money('recommended_amount') }} as recommended_amount,
        {{ autosync.round_money('approved_amount') }} as approved_amount

    from inspections

)

select * from final

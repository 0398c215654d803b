with

line_items as (

    select * from {{ ref('int_line_items_enriched') }}

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

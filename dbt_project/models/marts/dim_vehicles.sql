{#- One row per live vehicle, with its service history: work orders invoiced (live ones), on the
    shop's local calendar. -#}
with

vehicles as (

    select * from {{ ref('stg_autosync__vehicles') }}
    where not is_deleted

),

invoiced_work_orders as (

    select
        vehicle_id,
        invoiced_on,
        mileage_in,
        row_number() over (
            partition by vehicle_id
            order by invoiced_at desc, work_order_id desc
        ) as recency

    from {{ ref('int_work_orders_localized') }}
    where invoiced_at is not null
        and vehicle_id is not null

),

visits as (

    select
        vehicle_id,
        max(invoiced_on) as last_service_on,
        count(*) as visits,
        max(case when recency = 1 then mileage_in end) as last_mileage

    from invoiced_work_orders
    group by 1

),

final as (

    select
        vehicles.vehicle_id,
        vehicles.shop_id,
        vehicles.customer_id,
        vehicles.model_year,
        vehicles.make,
        vehicles.model,
        vehicles.trim,
        vehicles.vin,
        vehicles.mileage,
        vehicles.license_plate,
        visits.last_service_on,
        visits.last_mileage,
        coalesce(visits.visits, 0) as visits,
        vehicles.created_at,
        vehicles.updated_at

    from vehicles
    left join visits
        on vehicles.vehicle_id = visits.vehicle_id

)

select * from final

with

vehicles as (

    select * from {{ ref('stg_autosync__vehicles') }}
    where not is_deleted

),

final as (

    select
        vehicle_id,
        shop_id,
        customer_id,
        model_year,
        make,
        model,
        trim,
        vin,
        mileage,
        license_plate,
        created_at,
        updated_at

    from vehicles

)

select * from final

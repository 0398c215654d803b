with

shops as (

    select * from {{ ref('stg_autosync__shops') }}
    where not is_deleted

),

final as (

    select
        shop_id,
        shop_name,
        shop_slug,
        shop_status,
        phone,
        email,
        address_street,
        address_city,
        address_state,
        address_zip,
        tax_rate_percent,
        labor_rate,
        created_at,
        updated_at

    from shops

)

select * from final

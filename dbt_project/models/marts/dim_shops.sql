with

shops as (

    select * from {{ ref('stg_autosync__shops') }}
    where not is_deleted

),

shop_timezones as (

    select * from {{ ref('int_shop_timezones') }}

),

final as (

    select
        shops.shop_id,
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
        shop_timezones.timezone,
        shop_timezones.timezone_source,
        created_at,
        updated_at

    from shops
    left join shop_timezones
        on shops.shop_id = shop_timezones.shop_id

)

select * from final

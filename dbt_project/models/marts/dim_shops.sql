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
        shops.shop_name,
        shops.shop_slug,
        shops.shop_status,
        shops.phone,
        shops.email,
        shops.address_street,
        shops.address_city,
        shops.address_state,
        shops.address_zip,
        shops.tax_rate_percent,
        shops.labor_rate,
        shop_timezones.timezone,
        shop_timezones.timezone_source,
        shops.created_at,
        shops.updated_at

    from shops
    left join shop_timezones
        on shops.shop_id = shop_timezones.shop_id

)

select * from final

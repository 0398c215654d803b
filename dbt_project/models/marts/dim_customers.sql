with

customers as (

    select * from {{ ref('stg_autosync__customers') }}
    where not is_deleted

),

final as (

    select
        customer_id,
        shop_id,
        first_name,
        last_name,
        {{ dbt.concat(['first_name', "' '", 'last_name']) }} as customer_name,
        email,
        phone,
        is_business,
        company_name,
        address_street,
        address_city,
        address_state,
        address_zip,
        created_at,
        updated_at

    from customers

)

select * from final

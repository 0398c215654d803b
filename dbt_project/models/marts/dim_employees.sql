with

employees as (

    select * from {{ ref('stg_autosync__employees') }}
    where not is_deleted

),

final as (

    select
        employee_id,
        shop_id,
        first_name,
        last_name,
        {{ dbt.concat(['first_name', "' '", 'last_name']) }} as employee_name,
        email,
        employee_role,
        is_active,
        hourly_rate,
        created_at,
        updated_at

    from employees

)

select * from final

with

source as (

    {{ autosync.source_or_empty('autosync', 'employees', [
        'id',
        'shop_id',
        'first_name',
        'last_name',
        'email',
        'role',
        'active',
        'hourly_rate',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as employee_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(first_name as {{ dbt.type_string() }}) as first_name,
        cast(last_name as {{ dbt.type_string() }}) as last_name,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(role as {{ dbt.type_string() }}) as employee_role,
        cast(active as {{ dbt.type_boolean() }}) as is_active,
        cast(hourly_rate as {{ autosync.type_money() }}) as hourly_rate,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed

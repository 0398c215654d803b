with

source as (

    {{ autosync.source_or_empty('autosync', 'shops', [
        'id',
        'name',
        'slug',
        'status',
        'phone',
        'email',
        'address__street',
        'address__city',
        'address__state',
        'address__zip',
        'timezone',
        'settings__tax_rate',
        'settings__labor_rate',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as shop_id,
        cast(name as {{ dbt.type_string() }}) as shop_name,
        cast(slug as {{ dbt.type_string() }}) as shop_slug,
        cast(status as {{ dbt.type_string() }}) as shop_status,
        cast(phone as {{ dbt.type_string() }}) as phone,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(address__street as {{ dbt.type_string() }}) as address_street,
        cast(address__city as {{ dbt.type_string() }}) as address_city,
        cast(address__state as {{ dbt.type_string() }}) as address_state,
        cast(address__zip as {{ dbt.type_string() }}) as address_zip,
        cast(timezone as {{ dbt.type_string() }}) as api_timezone,
        cast(settings__tax_rate as {{ autosync.type_measure() }}) as tax_rate_percent,
        cast(settings__labor_rate as {{ autosync.type_money() }}) as labor_rate,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed

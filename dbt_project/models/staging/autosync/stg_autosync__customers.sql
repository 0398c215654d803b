with

source as (

    {{ autosync.source_or_empty('autosync', 'customers', [
        'id',
        'shop_id',
        'first_name',
        'last_name',
        'email',
        'phone',
        'is_business',
        'company_name',
        'address__street',
        'address__city',
        'address__state',
        'address__zip',
        'notes',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as customer_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(first_name as {{ dbt.type_string() }}) as first_name,
        cast(last_name as {{ dbt.type_string() }}) as last_name,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(phone as {{ dbt.type_string() }}) as phone,
        cast(is_business as {{ dbt.type_boolean() }}) as is_business,
        cast(company_name as {{ dbt.type_string() }}) as company_name,
        cast(address__street as {{ dbt.type_string() }}) as address_street,
        cast(address__city as {{ dbt.type_string() }}) as address_city,
        cast(address__state as {{ dbt.type_string() }}) as address_state,
        cast(address__zip as {{ dbt.type_string() }}) as address_zip,
        cast(notes as {{ dbt.type_string() }}) as customer_notes,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed

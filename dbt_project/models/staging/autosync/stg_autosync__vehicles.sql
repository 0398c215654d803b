with

source as (

    {{ autosync.source_or_empty('autosync', 'vehicles', [
        'id',
        'shop_id',
        'customer_id',
        'year',
        'make',
        'model',
        'trim',
        'vin',
        'mileage',
        'license_plate',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as vehicle_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(year as {{ dbt.type_bigint() }}) as model_year,
        cast(make as {{ dbt.type_string() }}) as make,
        cast(model as {{ dbt.type_string() }}) as model,
        cast(trim as {{ dbt.type_string() }}) as trim,
        cast(vin as {{ dbt.type_string() }}) as vin,
        cast(mileage as {{ dbt.type_bigint() }}) as mileage,
        cast(license_plate as {{ dbt.type_string() }}) as license_plate,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed

with

source as (

    {{ autosync.source_or_empty('autosync', 'appointments', [
        'id',
        'shop_id',
        'customer_id',
        'vehicle_id',
        'work_order_id',
        'starts_at',
        'ends_at',
        'status',
        'title',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as appointment_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(vehicle_id as {{ dbt.type_bigint() }}) as vehicle_id,
        cast(work_order_id as {{ dbt.type_bigint() }}) as work_order_id,
        {{ autosync.utc_timestamp('starts_at') }} as starts_at,
        {{ autosync.utc_timestamp('ends_at') }} as ends_at,
        cast(status as {{ dbt.type_string() }}) as appointment_status,
        cast(title as {{ dbt.type_string() }}) as title,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed

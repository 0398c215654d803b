with

source as (

    {{ autosync.source_or_empty('autosync', 'inventory', [
        'id',
        'shop_id',
        'part_number',
        'name',
        'brand',
        'quantity_on_hand',
        'reorder_point',
        'unit_cost',
        'unit_price',
        'location',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as part_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(part_number as {{ dbt.type_string() }}) as part_number,
        cast(name as {{ dbt.type_string() }}) as part_name,
        cast(brand as {{ dbt.type_string() }}) as brand,
        cast(quantity_on_hand as {{ autosync.type_measure() }}) as quantity_on_hand,
        cast(reorder_point as {{ autosync.type_measure() }}) as reorder_point,
        cast(unit_cost as {{ autosync.type_money() }}) as unit_cost,
        cast(unit_price as {{ autosync.type_money() }}) as unit_price,
        cast(location as {{ dbt.type_string() }}) as location,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed

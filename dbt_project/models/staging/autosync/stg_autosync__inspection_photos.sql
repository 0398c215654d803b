
{#- A child table: it has no _autosync_deleted_at of its own; a row is deleted when its
    top-level parent is (the connector replaces children with their parent). -#}
with

source as (

    {{ autosync.source_or_empty('autosync', 'inspections__items__photos', [
        'id',
        'shop_id',
        'inspection_id',
        'inspection_item_id',
        'url',
        'caption'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as inspection_photo_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(inspection_id as {{ dbt.type_bigint() }}) as inspection_id,
        cast(inspection_item_id as {{ dbt.type_bigint() }}) as inspection_item_id,
        cast(url as {{ dbt.type_string() }}) as photo_url,
        cast(caption as {{ dbt.type_string() }}) as caption

    from source

)

select * from renamed


{#- A child table: it has no _autosync_deleted_at of its own; a row is deleted when its
    top-level parent is (the connector replaces children with their parent). -#}
with

source as (

    {{ autosync.source_or_empty('autosync', 'inspections__items', [
        'id',
        'shop_id',
        'inspection_id',
        'job_id',
        'name',
        'category',
        'condition',
        'notes',
        'estimate_amount',
        'approval',
        'approved_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as inspection_item_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(inspection_id as {{ dbt.type_bigint() }}) as inspection_id,
        cast(job_id as {{ dbt.type_bigint() }}) as job_id,
        cast(name as {{ dbt.type_string() }}) as item_name,
        cast(category as {{ dbt.type_string() }}) as item_category,
        cast(condition as {{ dbt.type_string() }}) as item_condition,
        cast(notes as {{ dbt.type_string() }}) as item_notes,
        cast(estimate_amount as {{ autosync.type_money() }}) as estimate_amount,
        cast(approval as {{ dbt.type_string() }}) as approval_status,
        {{ autosync.utc_timestamp('approved_at') }} as approved_at

    from source

)

select * from renamed

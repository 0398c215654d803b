
{#- A child table: it has no _autosync_deleted_at of its own; a row is deleted when its
    top-level parent is (the connector replaces children with their parent). -#}
with

source as (

    {{ autosync.source_or_empty('autosync', 'work_orders__jobs__line_items', [
        'id',
        'shop_id',
        'work_order_id',
        'job_id',
        'type',
        'description',
        'technician_id',
        'hours',
        'rate',
        'part_id',
        'part_number',
        'quantity',
        'unit_cost',
        'unit_price',
        'taxable',
        'total'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as line_item_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(work_order_id as {{ dbt.type_bigint() }}) as work_order_id,
        cast(job_id as {{ dbt.type_bigint() }}) as job_id,
        cast(type as {{ dbt.type_string() }}) as line_item_type,
        cast(description as {{ dbt.type_string() }}) as description,
        cast(technician_id as {{ dbt.type_bigint() }}) as technician_id,
        cast(hours as {{ autosync.type_measure() }}) as hours,
        cast(rate as {{ autosync.type_money() }}) as labor_rate,
        cast(part_id as {{ dbt.type_bigint() }}) as part_id,
        cast(part_number as {{ dbt.type_string() }}) as part_number,
        cast(quantity as {{ autosync.type_measure() }}) as quantity,
        cast(unit_cost as {{ autosync.type_money() }}) as unit_cost,
        cast(unit_price as {{ autosync.type_money() }}) as unit_price,
        cast(taxable as {{ dbt.type_boolean() }}) as is_taxable,
        cast(total as {{ autosync.type_money() }}) as total

    from source

)

select * from renamed

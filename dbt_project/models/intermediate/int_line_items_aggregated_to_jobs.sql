{#- Per job sums over its line items (whatever the job's status: fct_jobs is one row per job and
    says its status; the marts filter declined jobs out themselves). Unrounded. -#}
with

line_items as (

    select * from {{ ref('int_line_items_enriched') }}

),

aggregated as (

    select
        job_id,
        sum(case when line_item_type = 'labor' then hours end) as labor_hours,
        sum(labor_cost) as labor_cost,
        cast(sum(case when is_labor_cost_missing then 1 else 0 end) as {{ dbt.type_bigint() }})
            as labor_items_without_rate,
        sum(part_cost) as parts_cost

    from line_items
    where job_id is not null
    group by job_id

)

select * from aggregated

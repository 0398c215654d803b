with

jobs as (

    select * from {{ ref('int_jobs_enriched') }}

),

aggregated as (

    select
        work_order_id,
        count(*) as jobs_count,
        cast(sum(case when is_declined then 1 else 0 end) as {{ dbt.type_bigint() }}) as declined_jobs_count,
        cast(sum(case when job_status = 'completed' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as completed_jobs_count

    from jobs
    group by work_order_id

)

select * from aggregated

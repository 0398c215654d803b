{#-
  Incremental builds of the models whose input grows with history (work orders, line items, daily
  revenue, weekly throughput): a build after a day of change rebuilds only what that day touched.

  What changed since the model's last build is read from the raw tables, not from updated_at:
  - every row a load wrote carries its load's `_dlt_load_id` (dlt's load ids are epoch seconds as
    strings and grow with time); a work order's jobs and line items are loaded with it, so a
    changed work order is found by its own row;
  - rows the delete reconciliation marked or un-marked deleted keep their load id; it appends them
    to `_autosync_delete_marks` with a `mark_id` in the same format (autosync_source/deletes.py).
  A late commit (a row whose updated_at is older than what was loaded before) is therefore found
  whenever it is loaded, however late: no look-back window on updated_at is needed. The days and
  weeks a changed row belongs to are computed from the row itself with the same local-date macros
  as the marts, so the shop's clock needs no look-back either.

  Each build of an incremental model keeps a row in `autosync_incremental_state` (in the model's
  schema): the newest load/mark id it has read (`watermark`) and a checksum of what else decides
  its rows (the zone vars and the model's code). A build reads changes in (last committed
  watermark, this build's watermark]; the post-hook commits the new one in the model's own
  transaction, so a failed build is redone whole by the next one.

  A build rebuilds everything (as `dbt build --full-refresh` does, but without dropping the table)
  when there is no committed state, when the zone vars, the model's code or the set of child tables
  changed (dlt creates one with its first row), when a raw
  table was reloaded from scratch (its oldest load id is newer than the watermark: rows that
  vanished from it would otherwise stay), or when a shop or an employee changed: a shop's zone
  moves every date of the shop, an employee's name and hourly rate show in all their rows, and
  both change rarely; and when more work orders and payments changed than the var
  `autosync_incremental_max_keys` allows (the keys are written into the SQL as constants).
-#}

{% macro incremental_strategy() -%}
    {#- The pre-hook (incremental_delete) deletes every row of the touched keys, those that come back
        and those that do not, so the model's rows are appended: `append` on DuckDB and Postgres
        (dbt's delete+insert would scan the table again for keys already gone); `merge` on the
        unique key on BigQuery, which has no delete+insert. -#}
    {{ return('merge' if target.type == 'bigquery' else 'append') }}
{%- endmacro %}


{% macro incremental_state_relation() -%}
    {{ return(api.Relation.create(database=this.database, schema=this.schema, identifier='autosync_incremental_state')) }}
{%- endmacro %}


{% macro create_incremental_state_sql(state) -%}
    create table if not exists {{ state }} (model_name {{ dbt.type_string() }}, invocation_id {{ dbt.type_string() }},
        watermark {{ dbt.type_string() }}, settings {{ dbt.type_string() }}, is_committed {{ dbt.type_boolean() }})
{%- endmacro %}


{#-
  The on-run-start hook (dbt_project.yml): create the state table once in each schema the selected
  incremental models build into (the marts' schema and `<schema>_staging`), before any model runs.
  Created by the models themselves, with several threads two of them sharing a schema would race:
  Postgres's `create table if not exists` is not safe against a concurrent create of the same name
  (the loser fails on the unique index pg_type_typname_nsp_index). dbt creates the selected models'
  schemas before this hook runs.
-#}
{% macro create_incremental_state() -%}
    {%- if execute and var('check_source_tables', true) -%}
        {%- set done = [] -%}
        {%- for node in graph.nodes.values()
               if node.resource_type == 'model' and node.config.materialized == 'incremental'
               and node.package_name == project_name and node.unique_id in selected_resources -%}
            {%- set state = api.Relation.create(database=node.database, schema=node.schema,
                                                identifier='autosync_incremental_state') -%}
            {%- if state | string not in done -%}
                {%- do done.append(state | string) -%}
                {%- do run_query(autosync.create_incremental_state_sql(state)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- Raw tables whose load ids mark a change: work orders (jobs and line items come with them),
    payments (refunds come with them), and shops and employees (a change there rebuilds all). -#}
{% macro incremental_raw_tables() -%}
    {{ return(['work_orders', 'payments', 'shops', 'employees']) }}
{%- endmacro %}


{% macro _incremental_quote(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}


{#-
  {full, since, upto, touched, keys} of this build of the calling model, read once, when the model
  compiles. `full` means: select every row (and, when the table exists, delete every row first).
  Otherwise `keys` are the touched keys as constants, so the warehouse filters on literal values:
  an IN list of work-order ids is pushed below the aggregating views and into the scans, where a
  semi-join on a subquery of changed ids is not. The keys: for `touched='work_orders'` the changed
  work-order ids, for 'revenue_days' the (shop_id, date) pairs, for 'weeks' the (shop_id,
  week_start) pairs.
  The model writes its window into its compiled SQL (incremental_window_marker); its pre-hook reads
  it from there, so the two agree exactly and the state is not read twice.
  More touched work orders and payments than the var `autosync_incremental_max_keys` (default
  20,000: a few days of change on a large account) rebuild the model whole, as a full build is then
  about as cheap and the SQL stays small.
-#}
{% macro incremental_window(touched='work_orders') -%}
    {%- set everything = {'full': true, 'since': none, 'upto': none, 'touched': touched, 'keys': []} -%}
    {#- A unit test gives the model its inputs as fixtures: it builds whole and reads no raw table. -#}
    {%- if model.resource_type == 'unit_test' -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set tables = {} -%}
    {%- for name in autosync.incremental_raw_tables() -%}
        {%- do tables.update({name: source('autosync', name)}) -%}
    {%- endfor -%}
    {%- do tables.update({'_autosync_delete_marks': source('autosync_reconciliation', '_autosync_delete_marks')}) -%}
    {#- Child tables change with their parent's load id; only their appearing or vanishing is checked. -#}
    {%- set children = {} -%}
    {%- for name in ['work_orders__jobs', 'work_orders__jobs__line_items', 'payments__refunds'] -%}
        {%- do children.update({name: source('autosync', name)}) -%}
    {%- endfor -%}
    {%- if not execute or not var('check_source_tables', true) -%}
        {{ return(everything) }}
    {%- endif -%}

    {%- set state = autosync.incremental_state_relation() -%}
    {%- set model_name = autosync._incremental_quote(this.identifier) -%}
    {%- set invocation = autosync._incremental_quote(invocation_id) -%}
    {%- set present = [] -%}
    {%- for name, relation in children.items() if load_relation(relation) is not none -%}
        {%- do present.append(name) -%}
    {%- endfor -%}
    {#- What decides every row besides the changed records: the zone vars, the model's code, and
        which child tables exist (a table dlt creates with its first row, or one dropped). -#}
    {%- set settings = local_md5(tojson(var('shop_timezones', {}) or {}) ~ '|' ~ var('default_timezone', 'UTC')
                                 ~ '|' ~ model.raw_code ~ '|' ~ present | join(',')) -%}
    {#- Normally created already by the on-run-start hook (create_incremental_state); this covers
        commands that run no hooks (dbt compile) and is a no-op when the table exists. -#}
    {% do run_query(autosync.create_incremental_state_sql(state)) %}

    {%- set newest = [] -%}
    {%- set existing = {} -%}
    {%- for name, relation in tables.items() -%}
        {%- if load_relation(relation) is not none -%}
            {%- do existing.update({name: relation}) -%}
            {%- do newest.append("select max(" ~ ('mark_id' if name == '_autosync_delete_marks' else '_dlt_load_id')
                                 ~ ") as watermark from " ~ relation) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if newest | length == 0 -%}
        {{ return(everything) }}
    {%- endif -%}
    {#- This build's watermark, recorded as a pending row (committed by the post-hook). The max is
        taken in a subquery: an aggregate over rows the WHERE removed would still give one (NULL) row. -#}
    {% do run_query(
        "insert into " ~ state ~ " (model_name, invocation_id, watermark, settings, is_committed) "
        ~ "select " ~ model_name ~ ", " ~ invocation ~ ", newest.watermark, '" ~ settings ~ "', false from ("
        ~ "select max(watermark) as watermark from (" ~ newest | join(" union all ") ~ ") as loads) as newest "
        ~ "where not exists (select 1 from " ~ state ~ " where model_name = " ~ model_name
        ~ " and invocation_id = " ~ invocation ~ ")") %}
    {%- set rows = run_query(
        "select invocation_id, watermark, settings, is_committed from " ~ state
        ~ " where model_name = " ~ model_name ~ " and (invocation_id = " ~ invocation ~ " or is_committed)") -%}
    {%- set pending = [] -%}
    {%- set committed = [] -%}
    {%- for row in rows if row[1] is not none -%}
        {%- if row[0] == invocation_id -%}
            {%- do pending.append(row) -%}
        {%- elif row[3] -%}
            {%- do committed.append(row) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set upto = pending[0][1] if pending else none -%}
    {%- set committed_marks = [] -%}
    {%- set committed_settings = [] -%}
    {%- for row in committed -%}
        {%- do committed_marks.append(row[1]) -%}
        {%- do committed_settings.append(row[2]) -%}
    {%- endfor -%}
    {%- set whole = {'full': true, 'since': none, 'upto': upto, 'touched': touched, 'keys': []} -%}
    {%- if not is_incremental() or upto is none or committed_marks | length == 0
           or committed_settings | unique | list != [settings] -%}
        {{ return(whole) }}
    {%- endif -%}
    {%- set window = {'full': false, 'since': committed_marks | max, 'upto': upto, 'touched': touched} -%}

    {#- One statement: the reasons to rebuild everything (a table reloaded from scratch, a shop or an
        employee changed) and the ids of the work orders and payments that changed. -#}
    {%- set parts = [] -%}
    {%- for name in autosync.incremental_raw_tables() if name in existing -%}
        {%- do parts.append("select 'reloaded' as kind, count(*) as id from " ~ existing[name]
                            ~ " having min(_dlt_load_id) > " ~ autosync._incremental_quote(window.since)) -%}
    {%- endfor -%}
    {%- for name in ['shops', 'employees', 'work_orders', 'payments'] -%}
        {%- do parts.append("select '" ~ name ~ "' as kind, id from (" ~ autosync.changed_ids(name, window) ~ ") as changed") -%}
    {%- endfor -%}
    {%- set changed = {'reloaded': [], 'shops': [], 'employees': [], 'work_orders': [], 'payments': []} -%}
    {%- for row in run_query(parts | join(" union all ")) -%}
        {%- do changed[row[0]].append(row[1] | int) -%}
    {%- endfor -%}
    {%- set limit = var('autosync_incremental_max_keys', 20000) | int -%}
    {%- if changed.reloaded or changed.shops or changed.employees -%}
        {{ log("autosync: " ~ this.identifier ~ " is rebuilt whole (a shop or an employee changed, or a raw table was reloaded)") }}
        {{ return(whole) }}
    {%- elif changed.work_orders | length + changed.payments | length > limit -%}
        {{ log("autosync: " ~ this.identifier ~ " is rebuilt whole: " ~ (changed.work_orders | length)
               ~ " work orders and " ~ (changed.payments | length) ~ " payments changed (more than "
               ~ "autosync_incremental_max_keys = " ~ limit ~ ")") }}
        {{ return(whole) }}
    {%- endif -%}
    {%- set work_orders = changed.work_orders | sort -%}
    {%- set payments = changed.payments | sort -%}
    {%- if touched == 'work_orders' -%}
        {%- do window.update({'keys': work_orders}) -%}
    {%- elif touched == 'revenue_days' -%}
        {%- do window.update({'keys': autosync._touched_pairs(autosync.touched_revenue_days_sql(work_orders, payments))}) -%}
    {%- elif touched == 'weeks' -%}
        {%- do window.update({'keys': autosync._touched_pairs(autosync.touched_weeks_sql(work_orders))}) -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("incremental_window: unknown touched keys " ~ touched) }}
    {%- endif -%}
    {{ return(window) }}
{%- endmacro %}


{#- [[shop_id, 'YYYY-MM-DD'], ...] of a query of (shop_id, date) pairs. -#}
{% macro _touched_pairs(sql) -%}
    {%- set pairs = [] -%}
    {%- for row in run_query("select distinct shop_id, cast(date as " ~ dbt.type_string() ~ ") from (" ~ sql
                              ~ ") as touched where shop_id is not null and date is not null order by 1, 2") -%}
        {%- do pairs.append([row[0] | int, row[1] | string]) -%}
    {%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}


{#- The model writes its window into its compiled SQL, as a comment; the pre-hook reads it back. -#}
{% macro incremental_window_marker(window) -%}
/* autosync incremental window: {{ tojson(window) }} */
{%- endmacro %}

{% macro _window_of_compiled_sql() -%}
    {%- set compiled = sql or model.compiled_code or '' -%}
    {%- set marker = '/* autosync incremental window: ' -%}
    {%- if marker not in compiled -%}
        {{ exceptions.raise_compiler_error("autosync: " ~ this.identifier ~ " has no incremental window in its "
            ~ "compiled SQL; an incremental model must call incremental_window_marker(window)") }}
    {%- endif -%}
    {{ return(fromjson(compiled.split(marker, 1)[1].split(' */', 1)[0])) }}
{%- endmacro %}


{#- Ids of a raw table's records loaded, or marked/un-marked deleted, within the window. -#}
{% macro changed_ids(resource, window) -%}
    {%- set since = autosync._incremental_quote(window.since) -%}
    {%- set upto = autosync._incremental_quote(window.upto) -%}
    {%- set raw = source('autosync', resource) -%}
    {%- set marks = source('autosync_reconciliation', '_autosync_delete_marks') -%}
    {%- if load_relation(raw) is none -%}
    select cast(null as {{ dbt.type_bigint() }}) as id from (select 1 as one) as nothing where 1 = 0
    {%- else -%}
    select cast(id as {{ dbt.type_bigint() }}) as id from {{ raw }}
    where _dlt_load_id > {{ since }} and _dlt_load_id <= {{ upto }}
    {%- endif %}
    {%- if load_relation(marks) is not none %}
    union distinct
    select cast(id as {{ dbt.type_bigint() }}) as id from {{ marks }}
    where table_name = '{{ resource }}' and mark_id > {{ since }} and mark_id <= {{ upto }}
    {%- endif -%}
{%- endmacro %}


{#-
  The pre-hook of an incremental model: delete the rows the build will write again, including the
  ones that will not come back (a work order deleted at the source, a day that lost its only
  invoice). The model's rows then only need appending (dbt's `append` on DuckDB and Postgres).
-#}
{% macro incremental_delete() -%}
    {%- if execute and var('check_source_tables', true) and is_incremental() -%}
        {%- set window = autosync._window_of_compiled_sql() -%}
        delete from {{ this }} as target where
        {%- if window.full %} 1 = 1
        {%- elif window.touched == 'work_orders' %} {{ autosync.touched_work_orders(window, 'target') }}
        {%- elif window.touched == 'revenue_days' %} {{ autosync.touched_days(window, 'target.shop_id', 'target.date') }}
        {%- elif window.touched == 'weeks' %} {{ autosync.touched_weeks(window, 'target.shop_id', 'target.week_start') }}
        {%- else %} {{ exceptions.raise_compiler_error('incremental_delete: unknown touched keys ' ~ window.touched) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- The post-hooks: commit this build's watermark, forget older ones (in the model's transaction). -#}
{% macro incremental_commit() -%}
    {%- if execute and var('check_source_tables', true) -%}
        {%- set state = autosync.incremental_state_relation() -%}
        {%- set model_name = autosync._incremental_quote(this.identifier) -%}
        {%- set invocation = autosync._incremental_quote(invocation_id) -%}
        update {{ state }} set is_committed = true
        where model_name = {{ model_name }} and invocation_id = {{ invocation }};
        delete from {{ state }} where model_name = {{ model_name }} and invocation_id <> {{ invocation }}
    {%- endif -%}
{%- endmacro %}


{#- ---------------------------------------------------------------------------------------------
    What a change touches, per model: predicates on constants, true for the rows to rebuild.
-#}

{#- Row-level models keyed by work order: the changed work orders (a payment changes none). -#}
{% macro touched_work_orders(window, alias) -%}
    {%- if window['keys'] %}{{ alias }}.work_order_id in ({{ window['keys'] | join(', ') }})
    {%- else %}1 = 0{% endif -%}
{%- endmacro %}

{#- A (shop, day) as one integer: shop_id * 100000 + the day's number (days since 1970-01-01). One
    IN list of integers is a hash probe per row, where an OR of per-shop date lists is evaluated
    term by term (on DuckDB 30x slower over the million line items). Unlike an IN list on a plain
    column (a work order id), DuckDB does not push this expression below a GROUP BY: the revenue
    mart's view of line items per work order is still aggregated whole before it is filtered. -#}
{% macro _shop_day_key(shop_column, date_column) -%}
    ({{ shop_column }} * 100000 + {{ autosync.day_number(date_column) }})
{%- endmacro %}

{#- The keys of [[shop_id, 'YYYY-MM-DD'], ...], each day followed by the `days` - 1 after it. -#}
{% macro _shop_day_keys(pairs, days=1) -%}
    {%- set epoch = modules.datetime.date(1970, 1, 1) -%}
    {%- set keys = [] -%}
    {%- for pair in pairs -%}
        {%- set first = pair[0] * 100000 + (modules.datetime.date.fromisoformat(pair[1]) - epoch).days -%}
        {%- for offset in range(days) -%}
            {%- do keys.append(first + offset) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(keys | unique | sort) }}
{%- endmacro %}

{#- Rows on a touched (shop, local day). -#}
{% macro touched_days(window, shop_column, date_column) -%}
    {%- if window['keys'] %}{{ autosync._shop_day_key(shop_column, date_column) }} in ({{ autosync._shop_day_keys(window['keys']) | join(', ') }})
    {%- else %}1 = 0{% endif -%}
{%- endmacro %}

{#- Rows on a day of a touched (shop, local ISO week): the week's seven days, which include its
    Monday (a week_start column). Cheaper per row than truncating every date to its week. -#}
{% macro touched_weeks(window, shop_column, date_column) -%}
    {%- if window['keys'] %}{{ autosync._shop_day_key(shop_column, date_column) }} in ({{ autosync._shop_day_keys(window['keys'], 7) | join(', ') }})
    {%- else %}1 = 0{% endif -%}
{%- endmacro %}


{#- (shop_id, date) of the local days whose revenue a change can move: the invoice day of each
    changed work order (deleted ones still have their raw row), and the payment and refund days of
    each changed payment and of every payment of a changed work order. Run once, at compile time,
    on the changed ids as constants. -#}
{% macro touched_revenue_days_sql(changed_work_orders, changed_payments) -%}
    {%- set work_orders = changed_work_orders | join(', ') if changed_work_orders else 'null' -%}
    {%- set payments = changed_payments | join(', ') if changed_payments else 'null' -%}
    select work_orders.shop_id, {{ autosync.local_date('work_orders.invoiced_at', autosync.timezone_or_default('zones.timezone')) }} as date
    from {{ ref('stg_autosync__work_orders') }} as work_orders
    left join {{ ref('int_shop_timezones') }} as zones on work_orders.shop_id = zones.shop_id
    where work_orders.invoiced_at is not null
        and work_orders.work_order_id in ({{ work_orders }})
    union distinct
    select payments.shop_id, {{ autosync.local_date('payments.created_at', autosync.timezone_or_default('zones.timezone')) }}
    from {{ ref('stg_autosync__payments') }} as payments
    left join {{ ref('int_shop_timezones') }} as zones on payments.shop_id = zones.shop_id
    where payments.payment_id in ({{ payments }}) or payments.work_order_id in ({{ work_orders }})
    union distinct
    select refunds.shop_id, {{ autosync.local_date('refunds.refunded_at', autosync.timezone_or_default('zones.timezone')) }}
    from {{ ref('stg_autosync__refunds') }} as refunds
    inner join {{ ref('stg_autosync__payments') }} as payments on refunds.payment_id = payments.payment_id
    left join {{ ref('int_shop_timezones') }} as zones on refunds.shop_id = zones.shop_id
    where payments.payment_id in ({{ payments }}) or payments.work_order_id in ({{ work_orders }})
{%- endmacro %}


{#- (shop_id, week_start) of the local ISO weeks in which a changed work order was completed. -#}
{% macro touched_weeks_sql(changed_work_orders) -%}
    select
        work_orders.shop_id,
        {{ autosync.week_start(autosync.local_date('work_orders.completed_at', autosync.timezone_or_default('zones.timezone'))) }}
            as date
    from {{ ref('stg_autosync__work_orders') }} as work_orders
    left join {{ ref('int_shop_timezones') }} as zones on work_orders.shop_id = zones.shop_id
    where work_orders.completed_at is not null
        and work_orders.work_order_id in ({{ changed_work_orders | join(', ') if changed_work_orders else 'null' }})
{%- endmacro %}

{#-
  The raw table, or an empty one with the same columns if the connector has not created it yet.
  dlt creates a table only when rows arrive: a shop with no refund yet has no payments__refunds
  table, and a first run limited to some resources has none of the others. Without this, one
  missing table would fail every model of the build instead of giving empty marts for it.
  Columns come back as strings; every staging model casts each column to its type anyway.
  The look-up asks the warehouse; `--vars '{check_source_tables: false}'` skips it (offline
  `dbt compile` on BigQuery, where there is no warehouse to ask).
-#}
{% macro source_or_empty(source_name, table_name, columns) %}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute and var('check_source_tables', true) and load_relation(relation) is none -%}
        {#- An empty or missing dataset is a wrong raw_schema, not a shop without refunds: fail. -#}
        {%- set loaded = [] -%}
        {%- for node in graph.sources.values() if node.source_name == source_name -%}
            {%- if load_relation(source(source_name, node.name)) is not none -%}
                {%- do loaded.append(node.name) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if loaded | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "the raw dataset '" ~ relation.schema ~ "' has no tables: load it first "
                ~ "(python pipelines/run.py) or name the loaded one with --vars '{raw_schema: <dataset>}'") }}
        {%- endif -%}
        {{ log("autosync: source table " ~ relation ~ " does not exist yet; reading it as empty", info=True) }}
    select
        {%- for column in columns %}
        cast(null as {{ dbt.type_string() }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    where 1 = 0
    {%- else -%}
    select * from {{ relation }}
    {%- endif -%}
{% endmacro %}

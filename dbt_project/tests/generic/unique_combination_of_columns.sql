{#- The grain of a model: no two rows share these columns. (dbt_utils has this; packages are not
    reachable from our machines, so the project carries its own.) -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}

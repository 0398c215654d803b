{#- A model that should never be empty once data is loaded (catches a filter that drops everything). -#}
{% test at_least_one_row(model) %}

select 'no rows' as problem
from (select count(*) as row_count from {{ model }}) as counted
where row_count = 0

{% endtest %}

{#-
  Reconciliation: the sum of a column of this model equals the sum of an expression over another
  model, per group (e.g. per shop, or per shop and day). Returns the groups that differ by more than
  `tolerance`. `to_where` filters the other model, the standard `where` config filters this one.
  `to_group_by` gives the other model's expressions for the same groups when the names differ.
-#}
{% test sums_reconcile(model, column_name, to, to_expression, group_by=[], to_group_by=None, to_where=None, tolerance=0) %}

{%- set to_group_by = to_group_by or group_by -%}

with

this_side as (

    select
        {% for column in group_by %}{{ column }} as group_{{ loop.index }}, {% endfor %}
        sum({{ column_name }}) as this_total
    from {{ model }}
    {% if group_by %}group by {% for column in group_by %}{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}

),

other_side as (

    select
        {% for expression in to_group_by %}{{ expression }} as group_{{ loop.index }}, {% endfor %}
        sum({{ to_expression }}) as other_total
    from {{ to }}
    {% if to_where %}where {{ to_where }}{% endif %}
    {% if to_group_by %}group by {% for expression in to_group_by %}{{ expression }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}

),

compared as (

    select
        {% for column in group_by %}coalesce(this_side.group_{{ loop.index }}, other_side.group_{{ loop.index }}) as {{ column }}, {% endfor %}
        coalesce(this_side.this_total, 0) as this_total,
        coalesce(other_side.other_total, 0) as other_total
    from this_side
    full outer join other_side
        {% if group_by %}
        on {% for column in group_by %}this_side.group_{{ loop.index }} = other_side.group_{{ loop.index }}{% if not loop.last %} and {% endif %}{% endfor %}
        {% else %}
        on 1 = 1
        {% endif %}

)

select *
from compared
where abs(this_total - other_total) > {{ tolerance }}

{% endtest %}

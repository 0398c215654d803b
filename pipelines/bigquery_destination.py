"""dlt's BigQuery destination as this project configures it, including an access-token option.

dlt resolves BigQuery credentials from `[destination.bigquery.credentials]` (a service account:
project_id, private_key, client_email; or an OAuth client with a refresh token) or from Google's
application-default credentials. Those paths are used unchanged.

One more is added: an OAuth **access token** alone,

    DESTINATION__BIGQUERY__CREDENTIALS__TOKEN=$(gcloud auth print-access-token)
    DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID=my-project

for short-lived runs whose token comes from outside (gcloud, workload identity federation, a
CI's token exchange, or a local BigQuery emulator). dlt's own OAuth credentials accept a `token`
field but cannot use it without a refresh token: they build Google's credentials with
`from_authorized_user_info`, which marks a token without an expiry as expired, so the client
tries to refresh it against Google's token endpoint and fails. Here the token becomes a
`google.oauth2.credentials.Credentials` with no refresh (it is used until it expires) and dlt
gets that native object, which it takes as is. dbt follows the same token
(pipelines/dbt_runner.py, target `bigquery_token`).

The API endpoint is Google's unless `BIGQUERY_EMULATOR_HOST` is set: that variable is read by
Google's BigQuery client itself (so by dlt and dbt alike), not by this project.
"""
from __future__ import annotations

from typing import Any, Optional

import dlt
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration, CredentialsConfiguration
from dlt.common.typing import TSecretStrValue


@configspec
class AccessTokenCredentials(CredentialsConfiguration):
    """The fields of `[destination.bigquery.credentials]` this module reads. The token fields are
    secret hints, so dlt's run trace (trace.pickle) records them as `<secret>`, never the value."""

    token: Optional[TSecretStrValue] = None
    refresh_token: Optional[TSecretStrValue] = None
    project_id: Optional[str] = None


@configspec
class _BigQuerySettings(BaseConfiguration):
    credentials: AccessTokenCredentials = None
    project_id: Optional[str] = None


def _settings() -> _BigQuerySettings:
    return resolve_configuration(_BigQuerySettings(), sections=("destination", "bigquery"), accept_partial=True)


def configured_access_token() -> Optional[str]:
    """The access token configured for BigQuery when it is the whole credential (no refresh
    token, i.e. not dlt's OAuth client flow), else None."""
    credentials = _settings().credentials
    if credentials is None or not credentials.token or credentials.refresh_token:
        return None  # no token, or dlt's OAuth client flow (refresh token, client id, secret)
    return str(credentials.token)


def bigquery_destination(**destination_kwargs: Any) -> Any:
    """dlt.destinations.bigquery(), with an access-token credential when one is configured."""
    token = configured_access_token()
    if token is None:
        return dlt.destinations.bigquery(**destination_kwargs)  # dlt resolves credentials itself
    settings = _settings()
    project = settings.credentials.project_id or settings.project_id
    if not project:
        from autosync_source.errors import DestinationError

        raise DestinationError(
            "BigQuery: an access token is configured (DESTINATION__BIGQUERY__CREDENTIALS__TOKEN) but "
            "no project: set DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID (or project_id under "
            "[destination.bigquery.credentials] in .dlt/secrets.toml).")
    from google.oauth2.credentials import Credentials

    # quota_project_id carries the project: dlt reads the project of native OAuth credentials from
    # it, and Google bills the API calls to it (the same project the jobs run in).
    credentials = Credentials(token=token, quota_project_id=str(project))
    return dlt.destinations.bigquery(credentials=credentials, **destination_kwargs)

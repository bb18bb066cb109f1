import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from domain.settings import (
    DEFAULT_GENERATION_DEADLINE_MINUTES,
    DEFAULT_RESEARCH_CACHE_TTL_HOURS,
    Need,
    SettingsError,
    load_settings,
    parse_settings,
)

SECRET = "s3cr#t/p@ss:word"


def prod_db(**overrides: str) -> dict[str, str]:
    values = {
        "ENVIRONMENT": "production",
        "PROD_DB_HOST": "db.example.postgres.database.azure.com",
        "PROD_DB_NAME": "skillsync",
        "PROD_DB_USER": "app",
        "PROD_DB_PASSWORD": SECRET,
    }
    values.update(overrides)
    return values


def problems_of(values: dict[str, str], **kwargs: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(values, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_database_url_wins_over_environment_parts() -> None:
    settings = parse_settings({"DATABASE_URL": "postgresql://u:p@db.internal:6432/app", **prod_db()})
    assert settings.database_url == "postgresql://u:p@db.internal:6432/app"
    assert settings.database_source == "DATABASE_URL"


def test_dsn_assembled_from_prod_parts_with_encoded_password_and_default_port() -> None:
    settings = parse_settings(prod_db())
    parts = urlsplit(settings.database_url or "")
    assert parts.hostname == "db.example.postgres.database.azure.com"
    assert parts.port == 5432
    assert parts.path == "/skillsync"
    assert parts.username == "app"
    assert "@" not in parts.password and ":" not in parts.password  # percent-encoded
    from urllib.parse import unquote

    assert unquote(parts.password or "") == SECRET
    assert settings.database_source == "PROD_DB_*"


def test_development_uses_dev_parts_and_explicit_port() -> None:
    values = {
        "ENVIRONMENT": "Development",
        "DEV_DB_HOST": "localhost",
        "DEV_DB_NAME": "dev",
        "DEV_DB_USER": "me",
        "DEV_DB_PASSWORD": "pw",
        "DEV_DB_PORT": "5433",
        **{k: v for k, v in prod_db().items() if k.startswith("PROD_")},
    }
    settings = parse_settings(values)
    assert settings.database_url == "postgresql://me:pw@localhost:5433/dev"


def test_one_line_per_missing_database_part_naming_it_and_where_to_set_it() -> None:
    problems = problems_of({"ENVIRONMENT": "production", "PROD_DB_HOST": "db.example.com"})
    assert len(problems) == 3
    for name, line in zip(["PROD_DB_NAME", "PROD_DB_USER", "PROD_DB_PASSWORD"], problems, strict=True):
        assert line.startswith(f"{name} is missing")
        assert "Application settings" in line and "local.settings.json" in line


def test_nothing_configured_names_both_ways_to_configure_the_database() -> None:
    [line] = problems_of({})
    assert "DATABASE_URL" in line and "ENVIRONMENT" in line and "PROD_DB_*" in line


def test_database_not_needed_means_none_and_no_problem() -> None:
    settings = parse_settings({}, needs=())
    assert settings.database_url is None
    assert settings.research_cache_ttl_hours == DEFAULT_RESEARCH_CACHE_TTL_HOURS
    assert settings.generation_deadline_minutes == DEFAULT_GENERATION_DEADLINE_MINUTES


def test_all_problems_are_collected_at_once() -> None:
    problems = problems_of(
        {
            "ENVIRONMENT": "staging",
            "RESEARCH_CACHE_TTL_HOURS": "a day",
            "GENERATION_DEADLINE_MINUTES": "-5",
            "COMPLETION_WEBHOOK_URL": "https://web.example.com/hook",
        },
        needs=(Need.DATABASE, Need.SERVICE_BUS),
    )
    names = [line.split(" ", 1)[0] for line in problems]
    assert names == [
        "ENVIRONMENT",
        "RESEARCH_CACHE_TTL_HOURS",
        "GENERATION_DEADLINE_MINUTES",
        "COMPLETION_WEBHOOK_SECRET",
        "AzureServiceBusConnectionString",
    ]


def test_invalid_port_is_reported() -> None:
    [line] = problems_of(prod_db(PROD_DB_PORT="54x"))
    assert line.startswith("PROD_DB_PORT is invalid")


def test_secrets_never_appear_in_messages_or_repr() -> None:
    bad_url = f"mysql://root:{SECRET}@db/x"
    problems = problems_of(
        {
            "DATABASE_URL": bad_url,
            "COMPLETION_WEBHOOK_SECRET": SECRET,
            "AzureServiceBusConnectionString": f"SharedAccessKey={SECRET}",
        }
    )
    assert len(problems) == 3
    assert all(SECRET not in line for line in problems)

    settings = parse_settings(
        prod_db(
            COMPLETION_WEBHOOK_URL="https://web.example.com/hook",
            COMPLETION_WEBHOOK_SECRET=SECRET,
            AzureServiceBusConnectionString=f"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey={SECRET}",
        ),
        needs=(Need.DATABASE, Need.SERVICE_BUS),
    )
    text = repr(settings) + str(settings)
    assert SECRET not in text and "p%40ss" not in text
    assert settings.database_display == "db.example.postgres.database.azure.com:5432/skillsync"
    assert settings.service_bus is not None and settings.service_bus.kind == "connection string"


def test_identity_based_service_bus_namespace() -> None:
    settings = parse_settings(
        prod_db(AzureServiceBusConnectionString__fullyQualifiedNamespace="skillsync.servicebus.windows.net"),
        needs=(Need.DATABASE, Need.SERVICE_BUS),
    )
    assert settings.service_bus is not None
    assert settings.service_bus.fully_qualified_namespace == "skillsync.servicebus.windows.net"
    assert settings.service_bus.kind == "managed identity"


def test_localhost_database_rejected_only_when_running_in_azure() -> None:
    local = prod_db(PROD_DB_HOST="localhost")
    assert parse_settings(local).database_url is not None
    [line] = problems_of({**local, "WEBSITE_SITE_NAME": "skillsync-functions"})
    assert line.startswith("PROD_DB_HOST is invalid") and "cannot reach" in line


def test_load_settings_environment_first_then_local_settings_values(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {"DATABASE_URL": "postgresql://a:b@file-host/app", "RESEARCH_CACHE_TTL_HOURS": 6},
            }
        )
    )
    settings = load_settings({"DATABASE_URL": "postgresql://a:b@env-host/app"}, tmp_path)
    assert settings.database_display == "env-host:5432/app"
    assert settings.research_cache_ttl_hours == 6.0
    assert load_settings({}, tmp_path).database_display == "file-host:5432/app"


def test_broken_local_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": {"A": 1,}}')
    with pytest.raises(SettingsError) as caught:
        load_settings({}, tmp_path)
    assert "local.settings.json: not valid JSON" in str(caught.value)


def test_missing_local_settings_file_is_fine(tmp_path: Path) -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://a:b@h/app"}, tmp_path)
    assert settings.database_display == "h:5432/app"


def test_unix_socket_host_for_local_development() -> None:
    settings = parse_settings(prod_db(PROD_DB_HOST="/run/postgresql", PROD_DB_PORT="5433"))
    assert settings.database_url is not None
    assert settings.database_url.endswith("@/skillsync?host=%2Frun%2Fpostgresql&port=5433")
    assert settings.database_display == "/run/postgresql:5433/skillsync"

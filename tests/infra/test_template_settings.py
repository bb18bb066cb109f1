"""The app settings of infra/main.bicep against the settings the code reads (found by AST) and each other.

No Bicep compiler or Azure here: the template is read with tests/infra/bicep.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from clients.ai.settings import KNOWN_PROVIDERS, load_ai_settings
from clients.research.config import ResearchConfig
from domain.settings import ENVIRONMENT_PREFIXES, Need, parse_settings
from infra.deploytool import SECRET_PARAMETERS
from tests.infra import bicep
from tests.infra.setting_reads import WILDCARD, collect

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "main.bicep"
PARAMETERS = REPO / "infra" / "main.parameters.json"
LOCAL_EXAMPLE = REPO / "local.settings.example.json"
PLANS = ("flex", "premium")

# Set by the platform in every Function App, never by us.
PLATFORM_SETTINGS = frozenset({"WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID"})
# Read by the code as an alternative; the template sets the replacement instead (the key of each entry).
ALTERNATIVES: dict[str, str] = {
    "ENVIRONMENT": "DATABASE_URL",
    **{
        prefix + part: "DATABASE_URL"
        for prefix in ENVIRONMENT_PREFIXES.values()
        for part in ("HOST", "NAME", "USER", "PASSWORD", "PORT")
    },
    # Identity-based connection in Azure; the connection string stays a local/emulator option.
    "AzureServiceBusConnectionString": "AzureServiceBusConnectionString__fullyQualifiedNamespace",
}
# Read by the Functions host / platform, not by our code.
HOST_SETTINGS = frozenset(
    {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "AzureServiceBusConnectionString__credential",
        "AzureServiceBusConnectionString__clientId",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
    }
)
# Flex Consumption rejects these (runtime and deployment come from functionAppConfig).
FLEX_FORBIDDEN = frozenset(
    {
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_RUN_FROM_PACKAGE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
    }
)
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "DATABASE_URL", "CONNECTION_STRING")


def code_paths() -> list[Path]:
    """Where settings are read: the settings/config modules, the service wiring, the function app."""
    paths = [REPO / "domain" / "settings.py", REPO / "function_app.py"]
    paths += sorted((REPO / "clients").rglob("settings.py")) + sorted((REPO / "clients").rglob("config.py"))
    paths += [p for p in [REPO / "clients" / "services.py"] if p.is_file()]
    for folder in ("activities", "starters"):
        paths += sorted((REPO / folder).glob("*.py"))
    return [p for p in paths if p.is_file()]


def pattern_expansions(pattern: str) -> list[str]:
    """Concrete names for a read whose key the code builds at run time (`f"{prefix}_API_KEY"`)."""
    if pattern.startswith(WILDCARD) and pattern.count(WILDCARD) == 1:
        tail = pattern[1:]
        if tail.startswith("_"):  # clients/ai: one per provider name
            return [provider.upper() + tail for provider in KNOWN_PROVIDERS]
        return [prefix + tail for prefix in ENVIRONMENT_PREFIXES.values()]  # domain/settings: *_DB_*
    raise AssertionError(f"no rule to expand the setting pattern {pattern!r}; teach pattern_expansions")


@pytest.fixture(scope="module")
def code_reads() -> set[str]:
    reads = collect(code_paths())
    names = {r.key for r in reads if not r.is_pattern}
    for read in reads:
        if read.is_pattern:
            names.update(pattern_expansions(read.key))
    return names


@pytest.fixture(scope="module")
def template() -> bicep.Template:
    return bicep.parse(TEMPLATE)


def template_settings(template: bicep.Template, plan: str) -> set[str]:
    platform = "flexSettings" if plan == "flex" else "premiumSettings"
    names: list[str] = []
    for var in ("connectionSettings", "applicationSettings", "secretSettings", platform):
        names += template.vars[var].object_names()
    assert len(names) == len(set(names)), (
        f"a setting is set twice: {sorted(n for n in names if names.count(n) > 1)}"
    )
    return set(names)


def test_the_app_settings_variable_is_built_from_the_parsed_lists(template: bicep.Template) -> None:
    used = template.vars["appSettings"].identifiers()
    assert {
        "connectionSettings",
        "applicationSettings",
        "secretAppSettings",
        "flexSettings",
        "premiumSettings",
    } <= used
    assert "secretSettings" in template.vars["secretAppSettings"].identifiers()
    site_tokens = [t.text for t in template.tokens]
    at = site_tokens.index("siteConfig")
    assert site_tokens[at : at + 40].count("appSettings") == 2  # `appSettings: appSettings`


def test_collector_sees_the_settings_it_must(code_reads: set[str]) -> None:
    # Spot checks of every way the code reads: literal, constant, f-string pattern, loop over a dict.
    assert {
        "DATABASE_URL",
        "AzureServiceBusConnectionString",
        "AI_PROVIDERS",
        "GROQ_API_KEY",
        "DOCS_SEARCH_URL",
        "PROD_DB_PORT",
        "WEBSITE_SITE_NAME",
        "GEMINI_BASE_URL",
    } <= code_reads


@pytest.mark.parametrize("plan", PLANS)
def test_every_setting_the_code_reads_is_set_by_the_template(
    plan: str, code_reads: set[str], template: bicep.Template
) -> None:
    provided = template_settings(template, plan)
    missing = sorted(
        name for name in code_reads - PLATFORM_SETTINGS if name not in provided and name not in ALTERNATIVES
    )
    assert not missing, f"infra/main.bicep ({plan}) does not set {missing}"
    for name, replacement in ALTERNATIVES.items():
        if name in code_reads:
            assert replacement in provided, f"{name} is replaced by {replacement}, which is not set"


@pytest.mark.parametrize("plan", PLANS)
def test_every_template_setting_is_read_by_the_code_or_the_host(
    plan: str, code_reads: set[str], template: bicep.Template
) -> None:
    unknown = sorted(template_settings(template, plan) - code_reads - HOST_SETTINGS)
    assert not unknown, f"infra/main.bicep sets {unknown}, which nothing reads (a typo?)"


def test_flex_gets_no_setting_flex_consumption_rejects(template: bicep.Template) -> None:
    assert not template_settings(template, "flex") & FLEX_FORBIDDEN
    premium = template_settings(template, "premium")
    assert {"FUNCTIONS_WORKER_RUNTIME", "WEBSITE_CONTENTSHARE", "SCM_DO_BUILD_DURING_DEPLOYMENT"} <= premium
    # `az functionapp deployment source config-zip --build-remote true` deletes ENABLE_ORYX_BUILD on every
    # deploy (azure-cli add_remote_build_app_settings): setting it would flip-flop with each template run.
    assert "ENABLE_ORYX_BUILD" not in premium


def test_secrets_are_secure_parameters_behind_key_vault(template: bicep.Template) -> None:
    secret_objects = template.vars["secretSettings"].objects()
    secure = {name for name, param in template.params.items() if param.secure}
    by_setting = {o["name"].text: o["value"].text for o in secret_objects}
    assert set(by_setting.values()) == secure, "every @secure() parameter is a secret setting and vice versa"
    assert by_setting == SECRET_PARAMETERS, "deploytool.py maps environment variables to these parameters"
    for setting in (
        template.vars["applicationSettings"].object_names()
        + template.vars["connectionSettings"].object_names()
    ):
        if setting.startswith("APPLICATIONINSIGHTS_"):
            continue  # not secrets: an ingestion endpoint and "use Entra ID"
        assert not any(word in setting.upper() for word in SECRET_WORDS), f"{setting} looks secret: move it"
    for param in secure:
        assert not template.params[param].default or template.params[param].default[0].text == "", param
    assert "@Microsoft.KeyVault(" in "".join(t.text for t in template.vars["secretAppSettings"].tokens)


def test_parameters_file_only_sets_declared_plain_parameters(template: bicep.Template) -> None:
    document = json.loads(PARAMETERS.read_text(encoding="utf-8"))
    assert document["$schema"].endswith("deploymentParameters.json#")
    for name in document["parameters"]:
        assert name in template.params, f"main.parameters.json sets undeclared parameter {name}"
        assert not template.params[name].secure, f"{name} is a secret: it comes from the environment"


def test_queue_contract(template: bicep.Template) -> None:
    assert template.vars["queueName"].tokens[0].text == "lesson-generation"
    assert template.params["serviceBusMaxDeliveryCount"].default[0].text == "5"
    assert template.params["plan"].default[0].text == "flex"


@pytest.mark.parametrize("plan", PLANS)
def test_local_example_has_every_setting_the_code_reads(plan: str, code_reads: set[str]) -> None:
    values = json.loads(LOCAL_EXAMPLE.read_text(encoding="utf-8"))["Values"]
    wanted = code_reads - PLATFORM_SETTINGS - set(ALTERNATIVES) | {"AzureServiceBusConnectionString"}
    wanted -= {"AzureServiceBusConnectionString__fullyQualifiedNamespace"}  # the connection string is used
    assert not sorted(wanted - set(values)), "local.settings.example.json lacks settings the code reads"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_local_example_values_are_accepted_by_the_settings_code() -> None:
    values = json.loads(LOCAL_EXAMPLE.read_text(encoding="utf-8"))["Values"]
    settings = parse_settings(values, needs=(Need.DATABASE, Need.SERVICE_BUS))
    assert settings.database_url and settings.service_bus and settings.service_bus.connection_string
    ai = load_ai_settings(values)
    assert [p.name for p in ai.providers] == ["deepseek", "groq", "gemini"] and not ai.skipped
    assert ResearchConfig.from_env(values).youtube_api_key


def test_collector_finds_reads_through_helpers_loops_and_patterns(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text(
        textwrap.dedent(
            """
            import os
            NAME = "CONST_SETTING"
            TABLE = {"LOOPED_A": 1, "LOOPED_B": 2}

            def _value(env, name):
                return env.get(name)

            def _number(env, name, default):
                return _value(env, name) or default

            def read(env, values, provider):
                _number(env, "VIA_HELPER", 1)
                os.environ["DIRECT"]
                os.getenv("GETENV")
                if NAME in values:
                    pass
                for key in TABLE:
                    env.get(key)
                setting = f"{provider.upper()}_SUFFIX"
                _value(env, setting)
                other = {"NOT_A_SETTING": 1}
                other.get("NOT_A_SETTING")
            """
        ),
        encoding="utf-8",
    )
    keys = {r.key for r in collect([module])}
    assert keys == {"VIA_HELPER", "DIRECT", "GETENV", "CONST_SETTING", "LOOPED_A", "LOOPED_B", "*_SUFFIX"}


def test_bicep_reader_ignores_comments_and_interpolated_names() -> None:
    source = textwrap.dedent(
        """
        // var fake = [ { name: 'IN_COMMENT' } ]
        @secure()
        param secretThing string
        param plain string = 'x'
        var list = [
          { name: 'REAL', value: plain } /* { name: 'BLOCK_COMMENT' } */
          { name: '${plain}_DYNAMIC', value: 'it\\'s' }
          { name: 'WITH_URL', value: 'https://x/${plain}' }
        ]
        """
    )
    tokens = bicep.tokenize(source)
    assert "IN_COMMENT" not in [t.text for t in tokens]
    assert "it\\'s" in [t.text for t in tokens]
    parsed = bicep.parse_text(source)
    assert parsed.params["secretThing"].secure and not parsed.params["plain"].secure
    assert parsed.vars["list"].object_names() == ["REAL", "WITH_URL"]
    with pytest.raises(bicep.BicepSyntaxError):
        bicep.tokenize("var x = 'unterminated\n")

#!/usr/bin/env bash
# Deploy Lesson Orchestrator to Azure from nothing, without Azure Functions Core Tools.
#
#   infra/deploy.sh [--dry-run] --resource-group RG --location LOCATION --name PREFIX [--plan flex|premium]
#
# 1. az group create                       the resource group
# 2. deploytool.py secret-params           secrets from the environment -> a 0600 parameters file
# 3. az deployment group create            infra/main.bicep + infra/main.parameters.json + the secrets file
# 4. deploytool.py package                 zip of the app without what .funcignore excludes
# 5. az functionapp deployment source config-zip --build-remote true
#                                          upload; the platform pip-installs requirements.txt (Oryx on
#                                          Premium, the Flex Consumption remote build on Flex)
#
# Secrets come from environment variables, never from arguments: DATABASE_URL (required), DEEPSEEK_API_KEY,
# GROQ_API_KEY, GEMINI_API_KEY, OPENAI_API_KEY, GITHUB_TOKEN, STACKEXCHANGE_KEY, YOUTUBE_API_KEY,
# COMPLETION_WEBHOOK_SECRET. --dry-run prints every command, one per line, and runs none of them.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: infra/deploy.sh [--dry-run] --resource-group RG --location LOCATION --name PREFIX [--plan flex|premium]

  --resource-group RG   resource group to create or update
  --location LOCATION   Azure region, e.g. westeurope (Flex Consumption is not in every region)
  --name PREFIX         3-20 chars: lowercase letters, digits, '-', starting with a letter;
                        the Function App is PREFIX-func (its host name must be globally unique)
  --plan flex|premium   Flex Consumption (default) or Elastic Premium
  --dry-run             print the commands, one per line, and run none
  -h, --help            this help

Secrets are read from the environment (DATABASE_URL is required); see docs/operations.md.
EOF
}

usage_error() {
    echo "deploy.sh: $1" >&2
    echo "run 'infra/deploy.sh --help' for usage" >&2
    exit 2
}

need_value() {
    # $1 option, $2 number of remaining args (including the option)
    if [[ "$2" -lt 2 ]]; then
        usage_error "$1 needs a value"
    fi
}

dry_run=false
resource_group=""
location=""
prefix=""
plan="flex"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry_run=true; shift ;;
        --resource-group|-g) need_value "$1" $#; resource_group="$2"; shift 2 ;;
        --location|-l) need_value "$1" $#; location="$2"; shift 2 ;;
        --name|-n) need_value "$1" $#; prefix="$2"; shift 2 ;;
        --plan) need_value "$1" $#; plan="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

[[ -n "$resource_group" ]] || usage_error "--resource-group is required"
[[ -n "$location" ]] || usage_error "--location is required"
[[ -n "$prefix" ]] || usage_error "--name is required"
[[ "$plan" == "flex" || "$plan" == "premium" ]] || usage_error "--plan must be flex or premium, not '$plan'"
[[ "$prefix" =~ ^[a-z][a-z0-9-]{2,19}$ && "$prefix" != *- ]] \
    || usage_error "--name '$prefix' must be 3-20 chars of a-z, 0-9, '-', start with a letter, not end with '-'"
[[ "$resource_group" =~ ^[-A-Za-z0-9._()]{1,90}$ && "$resource_group" != *. ]] \
    || usage_error "--resource-group '$resource_group' is not a valid resource group name"
[[ "$location" =~ ^[a-z0-9]+$ ]] || usage_error "--location '$location' must look like westeurope (no spaces)"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
function_app="${prefix}-func"
work_template="${TMPDIR:-/tmp}/lesson-orchestrator-deploy.XXXXXX"
work_dir="$work_template"  # the dry run shows the template; a real run uses the folder mktemp made
deployment_name="lesson-orchestrator-${prefix}"

if ! $dry_run; then
    command -v az >/dev/null 2>&1 \
        || { echo "deploy.sh: the Azure CLI 'az' is not installed (https://aka.ms/azure-cli)" >&2; exit 1; }
    command -v "$python" >/dev/null 2>&1 \
        || { echo "deploy.sh: '$python' not found; set PYTHON to a Python 3.9+ interpreter" >&2; exit 1; }
    [[ -n "${DATABASE_URL:-}" ]] \
        || { echo "deploy.sh: export DATABASE_URL (postgresql://...) first; it goes to Key Vault" >&2; exit 1; }
fi

# Print the command (shell-quoted, one line); run it unless --dry-run.
run() {
    local quoted
    printf -v quoted '%q ' "$@"
    if $dry_run; then
        echo "${quoted% }"
    else
        echo "+ ${quoted% }" >&2
        "$@"
    fi
}

if $dry_run; then
    run mktemp -d "$work_template"
else
    echo "+ mktemp -d $work_template" >&2
    work_dir="$(mktemp -d "$work_template")"  # private (0700), unpredictable name
    trap 'rm -rf "$work_dir"' EXIT
fi
secrets_file="$work_dir/secrets.parameters.json"
package_file="$work_dir/app.zip"
run az group create --name "$resource_group" --location "$location" --output none
run "$python" "$repo_root/infra/deploytool.py" secret-params --out "$secrets_file"
run az deployment group create \
    --resource-group "$resource_group" \
    --name "$deployment_name" \
    --template-file "$repo_root/infra/main.bicep" \
    --parameters "@$repo_root/infra/main.parameters.json" \
    --parameters "name=$prefix" "location=$location" "plan=$plan" \
    --parameters "@$secrets_file" \
    --output none
run rm -f "$secrets_file"
run "$python" "$repo_root/infra/deploytool.py" package --app-dir "$repo_root" --out "$package_file"
run az functionapp deployment source config-zip \
    --resource-group "$resource_group" \
    --name "$function_app" \
    --src "$package_file" \
    --build-remote true
if ! $dry_run; then
    echo "deployed: https://${function_app}.azurewebsites.net  (functions: az functionapp function list -g $resource_group -n $function_app -o table)" >&2
fi

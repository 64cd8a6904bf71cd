"""Configuration from the environment and `.env`, checked at startup (docs/design.md,
"Configuration and the policy file")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"

Mode = Literal["socket", "http", "sandbox"]


class SettingsError(ValueError):
    """Configuration a person must fix before the bot can start."""


def unset(description: str) -> Any:
    """A setting that is off (None) unless set."""
    return Field(default=None, description=description)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = unset("bot token (xoxb-…); unset: the local sandbox")
    slack_app_token: SecretStr | None = unset(
        "app-level token (xapp-…, connections:write): Socket Mode"
    )
    slack_signing_secret: SecretStr | None = unset("instead of SLACK_APP_TOKEN: HTTP mode on PORT")
    slack_api_url: str = Field(default=SLACK_API_URL, description="Slack Web API base")
    port: int = Field(
        default=3000, ge=0, le=65535, description="HTTP mode's /slack/events; the sandbox page"
    )
    host: str = Field(default="0.0.0.0", description="address the HTTP servers listen on")
    health_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Socket Mode: /healthz, /readyz, /metrics (0 = any free port)",
    )

    openai_api_key: SecretStr | None = unset(
        "key of an OpenAI-compatible endpoint; unset: offline model"
    )
    openai_base_url: str | None = unset("that endpoint's base URL (unset: OpenAI's)")
    openai_model: str = Field(default="gpt-4o-mini", description="the model to ask")

    database_url: str = Field(
        default="sqlite:///slack-approvals.sqlite3",
        description="sqlite:///FILE or postgresql://user@host/db",
    )
    approvals_tools: str | None = unset("package.module:attr of your tools; unset: the demo tools")
    approvals_mcp: str | None = unset("an mcpServers JSON file of MCP servers whose tools join")
    approvals_policy: str | None = unset("policy file (sandbox: examples/policy.yml)")
    demo_inventory: str = Field(
        default="demo-inventory.sqlite3", description="the demo tools' SQLite file"
    )
    # A team's own agent instead of the built-in one: a graph in this process, or on a server.
    approvals_graph: str | None = unset("package.module:attr of your own compiled LangGraph graph")
    langgraph_url: str | None = unset("URL of LangGraph Server running your agent")
    langgraph_assistant: str | None = unset("the assistant id or graph name to run there")
    langgraph_api_key: SecretStr | None = unset("API key for LangGraph Server (x-api-key header)")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if (
            self.slack_bot_token is not None
            and not self.slack_bot_token.get_secret_value().startswith("xox")
        ):
            raise ValueError("SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
        if (
            self.slack_app_token is not None
            and not self.slack_app_token.get_secret_value().startswith("xapp-")
        ):
            raise ValueError("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
        if self.slack_bot_token is None and (self.slack_app_token or self.slack_signing_secret):
            raise ValueError(
                "SLACK_APP_TOKEN or SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not: "
                "set the bot token (xoxb-…) from the app's OAuth & Permissions page"
            )
        if self.slack_bot_token is not None and not (
            self.slack_app_token or self.slack_signing_secret
        ):
            raise ValueError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
                "SLACK_SIGNING_SECRET (HTTP mode) is: set one of them"
            )
        if self.approvals_graph and self.langgraph_url:
            raise ValueError(
                "APPROVALS_GRAPH and LANGGRAPH_URL are both set: the agent runs either in "
                "process (APPROVALS_GRAPH) or on LangGraph Server (LANGGRAPH_URL), not both"
            )
        if (self.approvals_graph or self.langgraph_url) and (
            self.approvals_tools or self.approvals_mcp
        ):
            raise ValueError(
                "APPROVALS_TOOLS or APPROVALS_MCP is set together with APPROVALS_GRAPH or "
                "LANGGRAPH_URL: a team's own agent brings its own tools; unset them"
            )
        if self.langgraph_url and not self.langgraph_assistant:
            raise ValueError(
                "LANGGRAPH_URL is set but LANGGRAPH_ASSISTANT is not: set it to the assistant "
                "id or graph name (from langgraph.json) the bot should run"
            )
        if not self.slack_api_url.endswith("/"):
            self.slack_api_url += "/"
        return self

    def secret_values(self) -> list[str]:
        """The configured secrets in clear, for scrubbing them from logs and messages."""
        return [
            secret.get_secret_value()
            for secret in (
                self.slack_bot_token,
                self.slack_app_token,
                self.slack_signing_secret,
                self.openai_api_key,
                self.langgraph_api_key,
            )
            if secret is not None
        ]

    @property
    def mode(self) -> Mode:
        if self.slack_bot_token is None:
            return "sandbox"
        return "socket" if self.slack_app_token is not None else "http"


def environment_help() -> str:
    """Every variable the bot reads, with its default, for `run --help`."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else repr(field.default)
        lines.append(f"  {name.upper():22} {field.description} (default: {default})")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "\n  ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SettingsError(f"configuration error:\n  {problems}") from None

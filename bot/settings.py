"""Configuration from the environment and `.env`, checked at startup (docs/design.md,
"Configuration and the policy file")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"

Mode = Literal["socket", "http", "sandbox"]


class SettingsError(ValueError):
    """Configuration a person must fix before the bot can start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = SLACK_API_URL
    port: int = Field(default=3000, ge=0, le=65535)
    host: str = "0.0.0.0"
    # /healthz, /readyz and /metrics in Socket Mode (HTTP mode serves them on PORT); 0 = any.
    health_port: int = Field(default=8080, ge=0, le=65535)

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"

    database_url: str = "sqlite:///slack-approvals.sqlite3"
    approvals_tools: str | None = None
    approvals_policy: str | None = None
    demo_inventory: str = "demo-inventory.sqlite3"

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
            )
            if secret is not None
        ]

    @property
    def mode(self) -> Mode:
        if self.slack_bot_token is None:
            return "sandbox"
        return "socket" if self.slack_app_token is not None else "http"


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

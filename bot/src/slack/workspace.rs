//! The workspace and app this bot serves. Slack signs requests for every workspace an app is
//! installed in, so a valid signature alone does not make a request ours: the team and app ids
//! must be this bot's own (found with `auth.test` and `bots.info` at start, or configured), and a
//! user from another organisation (Slack Connect) is not one of ours unless configuration says so.

use super::api::WebApi;
use crate::error::Error;
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// `T…`: the workspace the bot token belongs to.
    pub team_id: String,
    /// `A…`: this Slack app.
    pub app_id: String,
    /// `U…`: the bot's own user, whose reactions and messages are ignored.
    pub bot_user: String,
    /// Other workspaces whose users may act (shared channels), from `SLACK_ALLOWED_TEAMS`.
    pub allowed_teams: BTreeSet<String>,
}

impl Workspace {
    /// Asks Slack who this token is (`auth.test`) and which app the bot belongs to (`bots.info`),
    /// checking both against the configured ids when they are given.
    pub async fn discover(
        api: &WebApi,
        team: Option<&str>,
        app: Option<&str>,
        allowed_teams: BTreeSet<String>,
    ) -> Result<Workspace, Error> {
        let me = api.call("auth.test", &[]).await.map_err(|e| match &e {
            super::api::SlackError::Api { code, .. } => Error::Config(format!(
                "Slack refused the bot token (auth.test: {code}); check SLACK_BOT_TOKEN (the xoxb- token of this app's installation)"
            )),
            _ => Error::Config(format!(
                "cannot reach the Slack Web API to check the bot token ({e}); check the network, a proxy, or SLACK_API_URL"
            )),
        })?;
        let found_team = me["team_id"].as_str().unwrap_or_default().to_string();
        let bot_user = me["user_id"].as_str().unwrap_or_default().to_string();
        let team_id = match team {
            Some(t) if !found_team.is_empty() && t != found_team => {
                return Err(Error::Config(format!(
                    "SLACK_TEAM_ID is {t}, but the bot token belongs to workspace {found_team}"
                )));
            }
            Some(t) => t.to_string(),
            None if !found_team.is_empty() => found_team,
            None => {
                return Err(Error::Config(
                    "Slack's auth.test did not say which workspace the token belongs to; set SLACK_TEAM_ID".into(),
                ));
            }
        };
        let app_id = match app {
            Some(a) => a.to_string(),
            None => {
                let bot_id = me["bot_id"].as_str().unwrap_or_default().to_string();
                let info = api
                    .call("bots.info", &[("bot", bot_id.clone())])
                    .await
                    .map_err(|e| {
                        Error::Config(format!(
                            "cannot find this bot's app id ({e}); set SLACK_APP_ID to the app's id (Basic Information → App ID)"
                        ))
                    })?;
                info["bot"]["app_id"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "Slack's bots.info for {bot_id} named no app; set SLACK_APP_ID"
                        ))
                    })?
            }
        };
        Ok(Workspace {
            team_id,
            app_id,
            bot_user,
            allowed_teams,
        })
    }

    pub fn admits_team(&self, team: &str) -> bool {
        team == self.team_id || self.allowed_teams.contains(team)
    }

    /// Why a request with these ids is not for this bot, if it is not.
    pub fn refuses(&self, team: Option<&str>, app: Option<&str>) -> Option<String> {
        match (team, app) {
            (_, Some(a)) if a != self.app_id => Some(format!(
                "this request is for Slack app {a}; this bot is app {}",
                self.app_id
            )),
            (_, None) => Some("the request names no Slack app (api_app_id)".into()),
            (Some(t), _) if !self.admits_team(t) => Some(format!(
                "this request comes from workspace {t}; this bot serves {} only",
                self.team_id
            )),
            (None, _) => Some("the request names no workspace (team_id)".into()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_own_team_and_app_are_admitted() {
        let w = Workspace {
            team_id: "T1".into(),
            app_id: "A1".into(),
            bot_user: "UBOT".into(),
            allowed_teams: ["T2".to_string()].into_iter().collect(),
        };
        assert_eq!(w.refuses(Some("T1"), Some("A1")), None);
        assert_eq!(w.refuses(Some("T2"), Some("A1")), None);
        assert!(
            w.refuses(Some("T0OTHER"), Some("A1"))
                .unwrap()
                .contains("workspace T0OTHER")
        );
        assert!(
            w.refuses(Some("T1"), Some("A0OTHERAPP"))
                .unwrap()
                .contains("app A0OTHERAPP")
        );
        assert!(w.refuses(None, Some("A1")).is_some());
        assert!(w.refuses(Some("T1"), None).is_some());
    }
}

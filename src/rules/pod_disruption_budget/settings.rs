//! Settings of pod-disruption-budget (spec key `podDisruptionBudget`): what the generated budget
//! allows, validated so that no budget blocks every node drain.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::rules::RuleSettings;

/// Settings of pod-disruption-budget.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// The budget pod-disruption-budget generates.
    #[serde(default)]
    pub pod_disruption_budget: DisruptionBudgetSettings,
}

/// An integer or a percentage such as `"25%"`, as PodDisruptionBudgets take them.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
#[schemars(extend("x-kubernetes-int-or-string" = true))]
pub enum IntOrPercent {
    /// A number of pods.
    Int(i64),
    /// A percentage of the pods, `"25%"`.
    Percent(String),
}

impl IntOrPercent {
    /// The value as JSON.
    pub fn to_value(&self) -> Value {
        match self {
            IntOrPercent::Int(n) => Value::from(*n),
            IntOrPercent::Percent(s) => Value::String(s.clone()),
        }
    }

    /// The number of pods or the percentage, or `None` when malformed.
    fn amount(&self) -> Option<(i64, bool)> {
        match self {
            IntOrPercent::Int(n) => Some((*n, false)),
            IntOrPercent::Percent(s) => {
                let digits = s.strip_suffix('%')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((digits.parse().ok()?, true))
            }
        }
    }
}

/// Settings of pod-disruption-budget. Give at most one of `maxUnavailable` and `minAvailable`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DisruptionBudgetSettings {
    /// Pods that may be down at once (default 1). 0 or 0% is refused: it blocks every drain.
    #[serde(default)]
    pub max_unavailable: Option<IntOrPercent>,
    /// Pods that must stay up, instead of `maxUnavailable`. 100% is refused: it blocks every
    /// drain.
    #[serde(default)]
    pub min_available: Option<IntOrPercent>,
    /// `AlwaysAllow` (default: a crash-looping pod never blocks a drain) or `IfHealthyBudget`.
    #[serde(default)]
    pub unhealthy_pod_eviction_policy: Option<String>,
}

impl RuleSettings for Settings {
    fn validate(&self) -> Result<Self, Error> {
        let budget = &self.pod_disruption_budget;
        let key = "spec.podDisruptionBudget";
        if budget.max_unavailable.is_some() && budget.min_available.is_some() {
            return Err(Error::Config(format!(
                "{key}: give maxUnavailable or minAvailable, not both"
            )));
        }
        for (field, value) in [
            ("maxUnavailable", &budget.max_unavailable),
            ("minAvailable", &budget.min_available),
        ] {
            let Some(value) = value else { continue };
            let Some((n, percent)) = value.amount() else {
                return Err(Error::Config(format!(
                    "{key}.{field}: expected an integer or a percentage such as \"25%\""
                )));
            };
            if n < 0 || (percent && n > 100) {
                return Err(Error::Config(format!(
                    "{key}.{field}: {} is out of range",
                    value.to_value()
                )));
            }
            if (field == "maxUnavailable" && n == 0)
                || (field == "minAvailable" && percent && n == 100)
            {
                return Err(Error::Config(format!(
                    "{key}.{field}: {} would block every node drain",
                    value.to_value()
                )));
            }
        }
        if let Some(p) = &budget.unhealthy_pod_eviction_policy {
            if p != "AlwaysAllow" && p != "IfHealthyBudget" {
                return Err(Error::Config(format!(
                    "{key}.unhealthyPodEvictionPolicy: `{p}` is not AlwaysAllow or IfHealthyBudget"
                )));
            }
        }
        Ok(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::spec_from_object;
    use crate::rules::testing::try_policy as policy;
    use serde_json::json;

    #[test]
    fn budgets_that_block_drains_or_are_malformed_are_refused() {
        for (budget, needle) in [
            (json!({"maxUnavailable": 0}), "block every node drain"),
            (json!({"minAvailable": "100%"}), "block every node drain"),
            (json!({"maxUnavailable": "25 %"}), "percentage"),
            (json!({"maxUnavailable": 1, "minAvailable": 1}), "not both"),
            (
                json!({"unhealthyPodEvictionPolicy": "Never"}),
                "AlwaysAllow",
            ),
            (
                json!({"maxUnavailable": true}),
                "spec.podDisruptionBudget.maxUnavailable",
            ),
        ] {
            let err = policy(json!({ "podDisruptionBudget": budget }))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{budget}: {err}");
        }
    }

    #[test]
    fn a_budget_from_a_policy_and_a_config_map() {
        let ok = policy(json!({"podDisruptionBudget": {"maxUnavailable": "50%"}})).unwrap();
        assert_eq!(
            ok.settings::<Settings>()
                .pod_disruption_budget
                .max_unavailable,
            Some(IntOrPercent::Percent("50%".into()))
        );
        let from_map = spec_from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"podDisruptionBudget": "{maxUnavailable: 2}"}}))
        .unwrap();
        assert_eq!(
            from_map
                .settings::<Settings>()
                .pod_disruption_budget
                .max_unavailable,
            Some(IntOrPercent::Int(2))
        );
    }
}

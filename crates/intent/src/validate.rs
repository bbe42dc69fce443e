//! Rules across fields of a parsed intent that need no catalog: targets present
//! and unique, privacy level given, client counts consistent.

use crate::error::FieldError;
use crate::model::{Cohort, Intent, Target};
use std::collections::HashMap;

/// Every cross-field problem of `intent`, in document order.
pub(crate) fn intent(intent: &Intent) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if intent.targets.is_empty() {
        errors.push(FieldError::new(
            "targets",
            "must list at least one target",
            "[]",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, t) in intent.targets.iter().enumerate() {
        let path = format!("targets[{i}]");
        if let Some(&first) = seen.get(t.id.as_str()) {
            errors.push(FieldError::new(
                format!("{path}.id"),
                format!("must be unique, targets[{first}] has it too"),
                format!("{:?}", t.id),
            ));
        } else {
            seen.insert(&t.id, i);
        }
        target(t, &path, &mut errors);
    }
    errors
}

fn target(t: &Target, path: &str, errors: &mut Vec<FieldError>) {
    let c = &t.constraints;
    let path = format!("{path}.constraints");
    if c.privacy_level.is_none() && !t.is_aggregate() {
        errors.push(FieldError::missing(
            format!("{path}.privacylevel"),
            "required, must be one of low | medium | high",
        ));
    }
    if let (Some(fit), Some(av)) = (c.min_fit, c.min_available)
        && fit > av
    {
        errors.push(FieldError::new(
            format!("{path}.minfit"),
            format!("must be <= minav ({av})"),
            fit.to_string(),
        ));
    }
    if let Some(cohort) = &c.cohort {
        cohort_rules(cohort, &format!("{path}.cohort"), errors);
        if let Some(av) = c.min_available {
            let clients = cohort.client_count();
            if av as usize > clients {
                errors.push(FieldError::new(
                    format!("{path}.minav"),
                    format!("must be <= the cohort's {clients} clients"),
                    av.to_string(),
                ));
            }
        }
    }
}

fn cohort_rules(cohort: &Cohort, path: &str, errors: &mut Vec<FieldError>) {
    match cohort.size {
        None if cohort.hosts.is_empty() => errors.push(FieldError::missing(
            path,
            "must give size or hosts (or both)",
        )),
        Some(size) if !cohort.hosts.is_empty() && size as usize != cohort.hosts.len() => {
            errors.push(FieldError::new(
                format!("{path}.size"),
                format!("must equal the number of hosts ({})", cohort.hosts.len()),
                size.to_string(),
            ));
        }
        _ => {}
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, host) in cohort.hosts.iter().enumerate() {
        if let Some(&first) = seen.get(host.as_str()) {
            errors.push(FieldError::new(
                format!("{path}.hosts[{i}]"),
                format!("must be unique, hosts[{first}] has it too"),
                format!("{host:?}"),
            ));
        } else {
            seen.insert(host, i);
        }
    }
}

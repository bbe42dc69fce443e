//! The prototype's form endpoints: `POST /serv` starts an FL server and
//! replies with its address, `POST /cli` starts an FL client and replies
//! with its job id (both plain text).

use crate::error::ApiError;
use crate::jobs::Agent;
use crate::spec::{
    AT_LEAST_ONE, ClientRequest, FRACTION_FIT, FieldError, Names, ServerRequest, dataset_rule,
    model_rule, strategy_rule,
};
use axum::Form;
use axum::extract::State;
use std::collections::HashMap;
use std::str::FromStr;

/// The prototype's field names.
const FORM_NAMES: Names = Names {
    strategy: "algo",
    rounds: "numround",
    fraction_fit: "fracfit",
    min_fit: "minfit",
    min_available: "minav",
    dataset: "source",
    model: "model",
    num_clients: "cohsize",
    index: "part",
};

type Fields = HashMap<String, String>;

fn text<'a>(form: &'a Fields, field: &str, rule: &str) -> Result<&'a str, FieldError> {
    form.get(field)
        .map(|v| v.trim())
        .ok_or_else(|| FieldError::missing(field, rule))
}

fn number<T: FromStr>(form: &Fields, field: &str, rule: &str) -> Result<T, FieldError> {
    let raw = text(form, field, rule)?;
    raw.parse()
        .map_err(|_| FieldError::invalid(field, rule, raw))
}

/// The `/serv` form as a server request.
pub fn server_request(form: &Fields) -> Result<ServerRequest, FieldError> {
    let raw = text(form, "fracfit", FRACTION_FIT)?;
    let fracfit = raw
        .parse()
        .ok()
        .filter(|x| crate::spec::fraction_fit_ok(*x))
        .ok_or_else(|| FieldError::invalid("fracfit", FRACTION_FIT, raw))?;
    let minfit = number(form, "minfit", AT_LEAST_ONE)?;
    Ok(ServerRequest {
        strategy: Some(text(form, "algo", &strategy_rule())?.to_owned()),
        fraction_fit: Some(fracfit),
        min_fit: Some(minfit),
        min_available: Some(number(form, "minav", AT_LEAST_ONE)?),
        rounds: Some(number(form, "numround", AT_LEAST_ONE)?),
        min_evaluate: Some(minfit),
        ..ServerRequest::default()
    })
}

/// The `/cli` form as a client request.
pub fn client_request(form: &Fields) -> Result<ClientRequest, FieldError> {
    Ok(ClientRequest {
        server: text(form, "server", crate::spec::HOST_PORT)?.to_owned(),
        dataset: text(form, "source", &dataset_rule())?.to_owned(),
        model: text(form, "model", &model_rule())?.to_owned(),
        num_clients: Some(number(form, "cohsize", AT_LEAST_ONE)?),
        index: Some(number(form, "part", "a whole number below cohsize")?),
        ..ClientRequest::default()
    })
}

/// `POST /serv` (algo, fracfit, minfit, minav, numround): the server's `IP:PORT`.
pub async fn serv(
    State(agent): State<Agent>,
    Form(form): Form<Fields>,
) -> Result<String, ApiError> {
    let spec = server_request(&form)?.into_spec(&FORM_NAMES)?;
    let started = agent.start_server(spec).await?;
    Ok(started.address.unwrap_or_default())
}

/// `POST /cli` (source, model, server, cohsize, part): the client's job id.
pub async fn cli(State(agent): State<Agent>, Form(form): Form<Fields>) -> Result<String, ApiError> {
    let spec = client_request(&form)?.into_spec(&FORM_NAMES)?;
    Ok(agent.start_client(spec).id)
}

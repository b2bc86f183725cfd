//! The OpenAPI document as the API really answers: utoipa describes each handler's `data`; this adds what every
//! answer shares, so a client generated from the document (or schemathesis) sees the real responses. A JSON success
//! is wrapped in its envelope `{success, data}`, and every operation lists the errors any request can meet: bad
//! input (400), no or a bad token (401) and the wrong role (403) where a caller is needed, a body too large or not
//! JSON (413, 415), an object not found (404), too many requests (429), busy or paused (503), a fault (500).
use serde_json::{Map, Value, json};

/// Successes that are not enveloped: probes and the providers' webhook acknowledgements.
const BARE: [&str; 4] = ["/healthz", "/readyz", "/api/v1/webhooks/stripe", "/api/v1/webhooks/paypal"];

/// `packages`: the ids of the catalogue this service sells, the only values a `packageId` may take.
pub fn document(openapi: &utoipa::openapi::OpenApi, packages: &[&str]) -> Value {
    let mut document = serde_json::to_value(openapi).unwrap_or_else(|_| json!({}));
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for schema in schemas.values_mut() {
            if let Some(package) = schema.pointer_mut("/properties/packageId").and_then(Value::as_object_mut) {
                package.insert("enum".into(), json!(packages));
            }
        }
        // An adjustment of zero credits is refused: the one bound utoipa's attributes cannot state.
        if let Some(credits) = schemas.get_mut("Adjustment").and_then(|s| s.pointer_mut("/properties/credits")) {
            credits.as_object_mut().map(|c| c.insert("not".into(), json!({ "const": 0 })));
        }
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return document };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for (method, operation) in operations.iter_mut() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let secured = operation.get("security").is_some_and(|s| s.as_array().is_some_and(|s| !s.is_empty()));
            let has_body = operation.get("requestBody").is_some();
            let has_params = path.contains('{');
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            if !BARE.contains(&path.as_str()) {
                envelope_successes(responses);
            }
            let mut errors = vec![
                ("400", "Bad input: a malformed path, query string or body (`error.code` says which)"),
                ("429", "Too many requests: try again after `Retry-After` seconds"),
                ("500", "An internal fault; nothing was half-written"),
                ("503", "Busy, or payments paused: try again after `Retry-After` seconds"),
            ];
            if secured {
                errors.push(("401", "No bearer token, or a malformed, forged, expired or wrongly issued one"));
                errors.push(("403", "The token's role may not do this"));
            }
            if has_body {
                errors.push(("413", "The body is larger than `server.body_limit_bytes`"));
                errors.push(("415", "The body is not `application/json`"));
            }
            if has_params || secured {
                errors.push(("404", "No such object for this caller"));
            }
            for (code, description) in errors {
                responses.entry(code.to_owned()).or_insert_with(|| {
                    json!({ "description": description,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } } })
                });
            }
        }
    }
    document
}

fn envelope_successes(responses: &mut Map<String, Value>) {
    for (code, response) in responses.iter_mut() {
        if !code.starts_with('2') {
            continue;
        }
        if let Some(schema) = response.pointer_mut("/content/application~1json/schema") {
            let data = schema.take();
            *schema = json!({ "type": "object", "required": ["success", "data"],
                "properties": { "success": { "type": "boolean", "enum": [true] }, "data": data } });
        }
    }
}

//! A day at an IT service desk through the API: a client imports its asset register from
//! CSV (a bad row is reported, the rest imported); its employees raise incidents on their
//! assets and ask for a service; an unknown asset is refused; priorities follow the impact
//! × urgency matrix, and an engagement's own matrix; an agent takes the work in priority
//! order; a network outage becomes a major incident whose linked incidents are resolved
//! with it, each requester told; a request is approved by a second person and fulfilled;
//! and the SLA clocks and the day's metrics report it.

use delego_core::identity::Role;
use delego_core::values::{Key, SkillLevel};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::{Session, TEST_DAY, TestServer, metric_total, sla_clock};

crate::on_both_backends!(
    a_day_at_the_service_desk_from_asset_import_to_major_incident_sla_and_metrics,
    registers_are_written_by_managers_and_the_clients_own_users_and_read_by_cleared_staff,
);

const IT_HELPDESK: &str = include_str!("../../../../catalog/it-helpdesk.toml");

const ASSETS: &str = "key,model,owner,location
LAP-0042,ThinkPad X1,eva@acme.example,Bratislava
SW-CORE-1,Catalyst 9300,,Server room
,Dell XPS,ann@acme.example,Košice
PRN-07,LaserJet M507,,Floor 2
LAP-0043,ThinkPad T14,joe@acme.example,Bratislava
";

/// An IT help desk engagement of `client` called `name`, made by a manager through the API.
async fn desk(manager: &Session, client: &str, name: &str) -> String {
    let (status, engagement) = manager
        .post(
            "/api/v1/engagements",
            json!({"client_id": client, "name": name, "service_key": "it-helpdesk",
                   "service_version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{engagement}");
    engagement["id"].as_str().unwrap().to_owned()
}

fn ticket(kind: &str, subject: &str, category: &str, impact: &str, urgency: &str) -> Json {
    json!({"data": {
        "type": kind, "subject": subject, "description": "Since this morning.",
        "requester_email": "eva@acme.example", "category": category,
        "impact": impact, "urgency": urgency, "channel": "portal",
    }})
}

fn with_asset(mut ticket: Json, asset: &str) -> Json {
    ticket["data"]["asset"] = json!(asset);
    ticket
}

fn id(item: &Json) -> &str {
    item["id"].as_str().unwrap()
}

async fn import(session: &Session, path: &str, csv: &str) -> (StatusCode, Json) {
    let response = session
        .request(Method::POST, path)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Json::Null))
}

/// Claims the caller's next task and submits it with `outcome` and `data`; returns the
/// item as the submission left it, after checking the task was for `expected`.
async fn work(session: &Session, expected: &str, outcome: &str, data: Json) -> Json {
    let (task, item) = session.next_task().await.expect("a task");
    assert_eq!(item, expected, "another item came first");
    session.submit_ok(&task, outcome, data).await
}

/// A worker of the desk with the given skills, signed in as `role`.
async fn desk_worker(
    server: &TestServer,
    client: delego_core::id::ClientId,
    role: Role,
    skills: &[&str],
) -> Session {
    let worker = server
        .worker_like(&[client], |worker| {
            worker.skills = skills
                .iter()
                .map(|skill| (Key::parse(skill).unwrap(), SkillLevel::new(3).unwrap()))
                .collect();
        })
        .await;
    server.sign_in(role, None, Some(worker)).await
}

async fn a_day_at_the_service_desk_from_asset_import_to_major_incident_sla_and_metrics(
    server: TestServer,
) {
    server.store().publish_service(IT_HELPDESK).await.unwrap();
    let acme = server.client("Acme Logistics").await;
    let globex = server.client("Globex Bank").await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let service_desk = desk(&manager, &acme.to_string(), "Service desk").await;
    let executive_desk = desk(&manager, &acme.to_string(), "Executive desk").await;
    let globex_desk = desk(&manager, &globex.to_string(), "Service desk").await;
    let employee = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let agent = desk_worker(&server, acme, Role::Agent, &["it_support"]).await;
    let approver = desk_worker(&server, acme, Role::TeamLead, &["it_approval"]).await;

    // The client imports its asset register; the row without a key is reported by its line.
    let registers = format!("/api/v1/clients/{acme}/registers/assets");
    let (status, report) = import(&employee, &format!("{registers}/import"), ASSETS).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"rows": 5, "imported": 4, "errors": [
            {"row": 4, "message": "the `key` column: a key is 1 to 200 characters without control characters"},
        ]})
    );
    let (status, laptop_entry) = agent.get(&format!("{registers}/entries/lap-0042")).await;
    assert_eq!(status, StatusCode::OK, "{laptop_entry}");
    assert_eq!(
        laptop_entry["data"],
        json!({"model": "ThinkPad X1", "owner": "eva@acme.example", "location": "Bratislava"})
    );

    // Incidents on assets and a service request; the matrix sets each priority.
    let report = async |ticket| employee.raise(&service_desk, ticket).await;
    let laptop = report(with_asset(
        ticket(
            "incident",
            "Laptop does not boot",
            "hardware",
            "low",
            "medium",
        ),
        "lap-0042",
    ))
    .await;
    assert_eq!(laptop["priority"], "low", "impact low × urgency medium");
    let (status, problem) = employee
        .post(
            &format!("/api/v1/engagements/{service_desk}/items"),
            with_asset(
                ticket("incident", "Screen flickers", "hardware", "low", "low"),
                "LAP-9999",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["errors"],
        json!([{"field": "asset", "code": "not_in_register",
                "message": "no affected asset `LAP-9999` in the client's assets register"}])
    );
    let request = report(ticket(
        "service_request",
        "Access to the finance share",
        "access",
        "low",
        "low",
    ))
    .await;
    assert_eq!(
        (request["priority"].as_str(), request["step"].as_str()),
        (Some("low"), Some("prepare"))
    );
    let outage = report(with_asset(
        ticket(
            "incident",
            "Network down on floor 2",
            "network",
            "high",
            "high",
        ),
        "SW-CORE-1",
    ))
    .await;
    assert_eq!(outage["priority"], "urgent");
    let mail = report(ticket(
        "incident",
        "No e-mail on floor 2",
        "email",
        "medium",
        "high",
    ))
    .await;
    assert_eq!(mail["priority"], "high");
    let printer = report(with_asset(
        ticket("incident", "Cannot print", "printing", "low", "medium"),
        "PRN-07",
    ))
    .await;

    // The item shows the asset it names, looked up in the register.
    let (_, shown) = agent.get(&format!("/api/v1/items/{}", id(&laptop))).await;
    assert_eq!(shown["register_entries"]["asset"]["key"], "LAP-0042");
    assert_eq!(
        shown["register_entries"]["asset"]["data"]["model"],
        "ThinkPad X1"
    );
    // Work has stopped: a higher urgency ranks the laptop anew.
    let (status, updated) = employee
        .call(
            Method::PATCH,
            &format!("/api/v1/items/{}", id(&laptop)),
            Some(json!({"data": {"urgency": "high"}})),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{updated}");
    let patched = employee
        .request(Method::PATCH, &format!("/api/v1/items/{}", id(&laptop)))
        .header("If-Match", format!("\"{}\"", shown["version"]))
        .json(&json!({"data": {"urgency": "high"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Json = patched.json().await.unwrap();
    assert_eq!(patched["priority"], "normal", "impact low × urgency high");
    let reprioritised = employee
        .history_entry(id(&laptop), "item.reprioritised")
        .await;
    assert_eq!(
        reprioritised["detail"]["reason"],
        "impact low × urgency high"
    );

    // The executive desk ranks by its own matrix: nothing there is below high.
    let settings = format!("/api/v1/engagements/{executive_desk}/settings");
    let mut cells = json!({
        "high": {"high": "urgent", "medium": "urgent", "low": "high"},
        "medium": {"high": "urgent", "medium": "high", "low": "high"},
        "low": {"high": "high", "medium": "high", "low": "high"},
    });
    let gap = {
        let mut gap = cells.clone();
        gap["low"].as_object_mut().unwrap().remove("low");
        gap
    };
    let (status, problem) = manager
        .call(
            Method::PUT,
            &settings,
            Some(json!({"priority_matrix": gap})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["errors"][0]["field"], "settings.priority_matrix",
        "{problem}"
    );
    let (status, _) = manager
        .call(
            Method::PUT,
            &settings,
            Some(json!({"priority_matrix": cells.take()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let executive = employee
        .raise(
            &executive_desk,
            ticket(
                "incident",
                "Projector in the boardroom",
                "hardware",
                "low",
                "low",
            ),
        )
        .await;
    assert_eq!(executive["priority"], "high");
    let (status, _) = employee
        .post(
            &format!("/api/v1/items/{}/cancel", id(&executive)),
            json!({"reason": "The projector works after all."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The outage is a major incident: the floor's other incidents follow it.
    for child in [&mail, &printer] {
        let (status, links) = agent
            .post(
                &format!("/api/v1/items/{}/parent", id(child)),
                json!({"parent": id(&outage)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{links}");
        assert_eq!(links["parent"], id(&outage));
    }
    let (status, _) = employee
        .post(
            &format!("/api/v1/items/{}/parent", id(&laptop)),
            json!({"parent": id(&outage)}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "linking is the staff's");
    let elsewhere = manager
        .raise(
            &globex_desk,
            ticket("incident", "Branch offline", "network", "high", "high"),
        )
        .await;
    let (status, _) = manager
        .post(
            &format!("/api/v1/items/{}/parent", id(&laptop)),
            json!({"parent": id(&elsewhere)}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a parent of another client");
    // The printer turns out to be a problem of its own.
    let (status, links) = agent
        .call(
            Method::DELETE,
            &format!("/api/v1/items/{}/parent", id(&printer)),
            None,
        )
        .await;
    assert_eq!(
        (status, links["parent"].clone()),
        (StatusCode::OK, Json::Null)
    );
    let (_, major) = agent.get(&format!("/api/v1/items/{}", id(&outage))).await;
    let children: Vec<&str> = major["links"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["id"].as_str().unwrap())
        .collect();
    assert_eq!(children, [id(&mail)]);
    // The floor sees the same on the items' pages, linked both ways, with the asset.
    let outage_page = manager.page_ok(&format!("/items/{}", id(&outage))).await;
    let mail_reference = mail["reference"].as_str().unwrap();
    assert!(
        outage_page.contains(&format!(
            "<a href=\"/items/{}\">{mail_reference}</a>",
            id(&mail)
        )),
        "{outage_page}"
    );
    let mail_page = manager.page_ok(&format!("/items/{}", id(&mail))).await;
    assert!(
        mail_page.contains(&format!(
            "<a href=\"/items/{}\">{}</a>",
            id(&outage),
            outage["reference"].as_str().unwrap()
        )),
        "{mail_page}"
    );
    let laptop_page = manager.page_ok(&format!("/items/{}", id(&laptop))).await;
    assert!(laptop_page.contains("model: ThinkPad X1"), "{laptop_page}");
    let (status, _) = employee
        .post(
            &format!("/api/v1/items/{}/cancel", id(&printer)),
            json!({"reason": "A colleague refilled the paper."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Half an hour on, the agent takes the work most urgent first and resolves the outage:
    // the linked incident is resolved with it and its requester told why.
    server.db.advance(SignedDuration::from_mins(30));
    let resolved = work(
        &agent,
        id(&outage),
        "resolved",
        json!({"reply": "The core switch on floor 2 is replaced; the network is back.",
               "resolution_code": "fixed"}),
    )
    .await;
    assert_eq!(resolved["position"]["resolution"], "resolved");
    let (_, followed) = employee.get(&format!("/api/v1/items/{}", id(&mail))).await;
    assert_eq!(
        (
            followed["status"].as_str(),
            followed["position"]["resolution"].as_str()
        ),
        (Some("completed"), Some("resolved"))
    );
    assert_eq!(followed["links"]["parent"], id(&outage));
    assert_eq!(sla_clock(&followed, "first_response"), "met");
    let (_, thread) = employee
        .get(&format!("/api/v1/items/{}/messages", id(&mail)))
        .await;
    let told = format!(
        "Resolved together with the major incident {}.\n\nThe core switch on floor 2 is replaced; the network is back.",
        outage["reference"].as_str().unwrap()
    );
    assert!(
        thread
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == told.as_str()),
        "{thread:#}"
    );

    let laptop_done = work(
        &agent,
        id(&laptop),
        "resolved",
        json!({"reply": "The disk is replaced.", "resolution_code": "fixed"}),
    )
    .await;
    assert_eq!(laptop_done["status"], "completed");

    // The access request is prepared, approved by someone else, then fulfilled.
    let prepared = work(
        &agent,
        id(&request),
        "for_approval",
        json!({"approval_note": "Read access to \\\\fs01\\finance for Eva, asked by her manager."}),
    )
    .await;
    assert_eq!(prepared["step"], "approve");
    assert_eq!(agent.next_task().await, None, "an agent does not approve");
    let approved = work(
        &approver,
        id(&request),
        "approve",
        json!({"approval_comment": "Fine."}),
    )
    .await;
    assert_eq!(approved["step"], "fulfil");
    // Two hours pass before anyone tells the requester: the first response is late.
    server.db.advance(SignedDuration::from_hours(2));
    let fulfilled = work(
        &agent,
        id(&request),
        "fulfilled",
        json!({"reply": "You can open \\\\fs01\\finance now."}),
    )
    .await;
    assert_eq!(fulfilled["position"]["resolution"], "fulfilled");

    // The SLA clocks say how each went.
    let (_, request_now) = employee
        .get(&format!("/api/v1/items/{}", id(&request)))
        .await;
    assert_eq!(sla_clock(&request_now, "first_response"), "breached");
    assert_eq!(sla_clock(&request_now, "resolution"), "met");
    let (_, outage_now) = employee
        .get(&format!("/api/v1/items/{}", id(&outage)))
        .await;
    assert_eq!(sla_clock(&outage_now, "first_response"), "met");
    assert_eq!(sla_clock(&outage_now, "resolution"), "met");

    // The day's metrics of the service desk: every item resolved in time, five tasks handled
    // (the linked incident's own task was withdrawn, not handled).
    let (status, metrics) = manager
        .get(&format!(
            "/api/v1/metrics?{TEST_DAY}&by=engagement&client_id={acme}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    let total = |measure| metric_total(&metrics, Some(&service_desk), measure);
    assert_eq!(
        [
            total("arrivals"),
            total("resolved"),
            total("sla_met"),
            total("handled")
        ],
        [5, 4, 4, 5],
        "{metrics:#}"
    );
}

async fn registers_are_written_by_managers_and_the_clients_own_users_and_read_by_cleared_staff(
    server: TestServer,
) {
    let acme = server.client("Acme").await;
    let globex = server.client("Globex").await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let employee = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let outsider = server.sign_in(Role::ClientUser, Some(globex), None).await;
    let agent = desk_worker(&server, acme, Role::Agent, &["it_support"]).await;
    let entry = format!("/api/v1/clients/{acme}/registers/assets/entries/LAP-1");
    let data = json!({"data": {"model": "X1"}});

    let (status, written) = employee.call(Method::PUT, &entry, Some(data.clone())).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(
        (written["key"].as_str(), written["client_id"].as_str()),
        (Some("LAP-1"), Some(acme.to_string().as_str()))
    );
    assert_eq!(
        agent.get(&entry).await.0,
        StatusCode::OK,
        "staff read within their scope"
    );
    assert_eq!(
        agent.call(Method::PUT, &entry, Some(data.clone())).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        agent.call(Method::DELETE, &entry, None).await.0,
        StatusCode::FORBIDDEN
    );
    // Another client's register answers like an unknown client's.
    let (status, hidden) = outsider.get(&entry).await;
    let unknown = entry.replace(&acme.to_string(), &uuid::Uuid::now_v7().to_string());
    assert_eq!((status, hidden.clone()), outsider.get(&unknown).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        outsider
            .call(Method::PUT, &entry, Some(data.clone()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(manager.get(&unknown).await.0, StatusCode::NOT_FOUND);

    // Pages with a cursor, in key order; the manager writes too.
    let (status, report) = import(
        &manager,
        &format!("/api/v1/clients/{acme}/registers/assets/import"),
        "KEY,model\nlap-2,T14\nLAP-3,T14\n",
    )
    .await;
    assert_eq!(
        (status, report["imported"].clone()),
        (StatusCode::OK, json!(2))
    );
    let list = format!("/api/v1/clients/{acme}/registers/assets/entries?limit=2");
    let (_, page) = agent.get(&list).await;
    let keys = |page: &Json| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&page), ["LAP-1", "lap-2"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = agent.get(&format!("{list}&cursor={cursor}")).await;
    assert_eq!(keys(&rest), ["LAP-3"]);
    assert_eq!(rest["next_cursor"], Json::Null);
    let (status, _) = import(
        &employee,
        &format!("/api/v1/clients/{acme}/registers/assets/import"),
        "model\nT14\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no key column");
    let (status, _) = employee
        .post(
            &format!("/api/v1/clients/{acme}/registers/assets/import"),
            json!({"key": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let any_case = entry.replace("LAP-1", "lap-1");
    assert_eq!(
        employee.call(Method::DELETE, &any_case, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(employee.get(&entry).await.0, StatusCode::NOT_FOUND);

    // Provider-wide entries are the managers', and every client's items may name them.
    let shared = "/api/v1/registers/assets/entries/VPN-GATEWAY";
    assert_eq!(
        employee
            .call(Method::PUT, shared, Some(data.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(agent.get(shared).await.0, StatusCode::FORBIDDEN);
    let (status, written) = manager
        .call(
            Method::PUT,
            shared,
            Some(json!({"data": {"kind": "service"}})),
        )
        .await;
    assert_eq!(
        (status, written["client_id"].clone()),
        (StatusCode::OK, Json::Null)
    );
    let (_, listed) = manager.get("/api/v1/registers/assets/entries").await;
    assert_eq!(listed["entries"].as_array().unwrap().len(), 1);
    server.store().publish_service(IT_HELPDESK).await.unwrap();
    let engagement = desk(&manager, &globex.to_string(), "Service desk").await;
    let item = outsider
        .raise(
            &engagement,
            with_asset(
                ticket("incident", "VPN drops", "network", "medium", "medium"),
                "vpn-gateway",
            ),
        )
        .await;
    let (_, shown) = outsider.get(&format!("/api/v1/items/{}", id(&item))).await;
    assert_eq!(
        shown["register_entries"]["asset"]["data"]["kind"],
        "service"
    );
    assert_eq!(
        manager.call(Method::DELETE, shared, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, shown) = outsider.get(&format!("/api/v1/items/{}", id(&item))).await;
    assert_eq!(
        shown["register_entries"]["asset"],
        Json::Null,
        "the entry is gone"
    );
}

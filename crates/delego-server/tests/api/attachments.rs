//! Attachments through the API: upload, metadata, streamed download, the limits on size,
//! type and name, isolation between clients, and attachment ids in forms.

use delego_core::identity::Role;
use delego_core::model::Actor;
use delego_core::values::{Key, Name};
use delego_server::Config;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::harness::{CUSTOMER_SUPPORT, Session, TestServer};

crate::on_both_backends!(
    an_uploaded_file_downloads_with_the_same_bytes_and_headers,
    another_clients_user_finds_no_attachment_exactly_like_an_unknown_one,
    an_upload_announced_over_the_limit_is_refused_before_its_body,
    disallowed_or_disguised_types_get_415_and_a_bad_filename_422,
    forms_refuse_attachment_ids_of_another_client_and_accept_their_own,
);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
const SMALL_LIMIT: u64 = 64 * 1024;

fn ticket() -> Json {
    json!({"data": {"subject": "Broken seal", "description": "See the photo.", "requester_email": "r@example.com"}})
}

async fn new_item(session: &Session, engagement: &str, body: Json) -> (StatusCode, Json) {
    session
        .post(&format!("/api/v1/engagements/{engagement}/items"), body)
        .await
}

async fn item_of(session: &Session, engagement: &str) -> String {
    let (status, item) = new_item(session, engagement, ticket()).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item["id"].as_str().unwrap().to_owned()
}

async fn upload(
    session: &Session,
    item: &str,
    filename: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> (StatusCode, reqwest::header::HeaderMap, Json) {
    let query = if filename.is_empty() {
        String::new()
    } else {
        format!("?filename={}", urlencode(filename))
    };
    let mut request = session
        .request(
            Method::POST,
            &format!("/api/v1/items/{item}/attachments{query}"),
        )
        .body(bytes);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Json::Null),
    )
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A PNG-looking file of `len` bytes whose content is not all the same.
fn png_of(len: usize) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.extend((0..len - PNG.len()).map(|i| (i * 7 % 251) as u8));
    bytes
}

/// Every file under the server's attachment directory.
fn stored_files(server: &TestServer) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![server.data_dir.path().to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

async fn an_uploaded_file_downloads_with_the_same_bytes_and_headers(server: TestServer) {
    let acme = server.client("Acme").await;
    let engagement = server.engagement(acme).await;
    let user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let item = item_of(&user, &engagement).await;
    // Large enough to arrive and leave in several chunks.
    let bytes = png_of(300_000);
    let filename = "snímka obrazovky; 1.png";

    let (status, headers, created) =
        upload(&user, &item, filename, Some("image/png"), bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers[header::LOCATION],
        format!("/api/v1/attachments/{id}")
    );
    assert_eq!(created["filename"], filename);
    assert_eq!(created["content_type"], "image/png");
    assert_eq!(created["size"], bytes.len());
    assert_eq!(created["sha256"], sha256.as_str());
    assert_eq!(created["item_id"], item.as_str());
    assert_eq!(created["client_id"], acme.to_string());

    let (status, metadata) = user.get(&format!("/api/v1/attachments/{id}")).await;
    assert_eq!((status, &metadata), (StatusCode::OK, &created));
    let (status, listed) = user.get(&format!("/api/v1/items/{item}/attachments")).await;
    assert_eq!((status, listed), (StatusCode::OK, json!([created])));

    // A cleared agent downloads what the client uploaded.
    let worker = server.worker(&[acme]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let response = agent
        .request(Method::GET, created["content_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        bytes.len().to_string().as_str()
    );
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename*=UTF-8''sn%C3%ADmka%20obrazovky%3B%201.png"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers[header::ETAG], format!("\"{sha256}\"").as_str());
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // The upload is on the item's audit trail (the background runtime may add its own
    // entries meanwhile, so look for it rather than at the last one).
    let (_, history) = user.get(&format!("/api/v1/items/{item}/history")).await;
    let added: Vec<&serde_json::Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "attachment.added")
        .collect();
    assert_eq!(added.len(), 1, "{history}");
}

async fn another_clients_user_finds_no_attachment_exactly_like_an_unknown_one(server: TestServer) {
    let acme = server.client("Acme").await;
    let globex = server.client("Globex").await;
    let engagement = server.engagement(acme).await;
    let acme_user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let globex_user = server.sign_in(Role::ClientUser, Some(globex), None).await;
    let item = item_of(&acme_user, &engagement).await;
    let (status, _, created) = upload(
        &acme_user,
        &item,
        "secret.txt",
        Some("text/plain"),
        b"acme only".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();

    for path in ["/api/v1/attachments/{}", "/api/v1/attachments/{}/content"] {
        let (status, foreign) = globex_user.get(&path.replace("{}", id)).await;
        let (_, missing) = globex_user.get(&path.replace("{}", &unknown)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(foreign, missing, "{path}");
    }
    let (status, _, foreign) = upload(
        &globex_user,
        &item,
        "planted.txt",
        Some("text/plain"),
        b"x".to_vec(),
    )
    .await;
    let (_, _, missing) = upload(
        &globex_user,
        &unknown,
        "planted.txt",
        Some("text/plain"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(foreign, missing);
    let (status, foreign) = globex_user
        .get(&format!("/api/v1/items/{item}/attachments"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{foreign}");
    let (_, listed) = acme_user
        .get(&format!("/api/v1/items/{item}/attachments"))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing was planted");
}

async fn an_upload_announced_over_the_limit_is_refused_before_its_body(server: TestServer) {
    let acme = server.client("Acme").await;
    let engagement = server.engagement(acme).await;
    let user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let item = item_of(&user, &engagement).await;
    let token = token_of(&user).await;
    let limit = server.state.config.max_attachment_bytes;
    let head = raw_upload(&server, &item, &token, Framing::Announced(limit + 1), &[]).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    assert!(stored_files(&server).is_empty());
}

async fn disallowed_or_disguised_types_get_415_and_a_bad_filename_422(server: TestServer) {
    let acme = server.client("Acme").await;
    let engagement = server.engagement(acme).await;
    let user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let item = item_of(&user, &engagement).await;
    let html = b"<html><script>alert(1)</script></html>".to_vec();

    for content_type in [Some("text/html"), Some("application/x-msdownload"), None] {
        let (status, _, problem) =
            upload(&user, &item, "page.html", content_type, html.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {problem}"
        );
        assert_eq!(problem["type"], "urn:delego:problem:unsupported-media-type");
    }
    let (status, _, problem) =
        upload(&user, &item, "photo.png", Some("image/png"), html.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        problem["detail"].as_str().unwrap().contains("PNG"),
        "{problem}"
    );
    let (status, _, problem) = upload(
        &user,
        &item,
        "invoice.pdf",
        Some("application/pdf"),
        html.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        problem["detail"].as_str().unwrap().contains("PDF"),
        "{problem}"
    );
    let (status, _, _) = upload(
        &user,
        &item,
        "invoice.pdf",
        Some("Application/PDF; charset=binary"),
        b"%PDF-1.7\n".to_vec(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "types are matched without case or parameters"
    );

    for filename in ["", "../../etc/passwd", "a\\b.txt", "tab\there.txt"] {
        let (status, _, problem) =
            upload(&user, &item, filename, Some("text/plain"), b"x".to_vec()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{filename:?}: {problem}"
        );
        assert_eq!(problem["errors"][0]["field"], "filename", "{problem}");
    }
    let (status, _, problem) = upload(
        &user,
        &item,
        &"x".repeat(256),
        Some("text/plain"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_long"))
    );
    let (status, _, problem) =
        upload(&user, &item, "empty.txt", Some("text/plain"), Vec::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    let (_, listed) = user.get(&format!("/api/v1/items/{item}/attachments")).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the real PDF is kept: {listed}"
    );
    assert_eq!(stored_files(&server).len(), 1);
}

/// The customer-support service with a list of attachments on the agent's form too.
fn support_with_files() -> String {
    CUSTOMER_SUPPORT
        .replace("key = \"customer-support\"", "key = \"support-files\"")
        .replace(
            "{ name = \"reply\",",
            "{ name = \"files\", label = \"Files\", type = \"list\", item = \"attachment\" },\n  { name = \"reply\",",
        )
}

async fn forms_refuse_attachment_ids_of_another_client_and_accept_their_own(server: TestServer) {
    let service = server
        .store()
        .publish_service(&support_with_files())
        .await
        .unwrap();
    let acme = server.client("Acme").await;
    let globex = server.client("Globex").await;
    let engagement = server
        .store()
        .create_engagement(
            acme,
            Name::parse("Support with files").unwrap(),
            &Key::parse("support-files").unwrap(),
            service.version,
            Default::default(),
            &Actor::System,
        )
        .await
        .unwrap()
        .id
        .to_string();
    let globex_engagement = server.engagement(globex).await;
    let acme_user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let globex_user = server.sign_in(Role::ClientUser, Some(globex), None).await;
    let acme_item = item_of(&acme_user, &engagement).await;
    let globex_item = item_of(&globex_user, &globex_engagement).await;
    let upload_text = async |session: &Session, item: &str| {
        let (status, _, created) = upload(
            session,
            item,
            "note.txt",
            Some("text/plain"),
            b"note".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().unwrap().to_owned()
    };
    let own = upload_text(&acme_user, &acme_item).await;
    let theirs = upload_text(&globex_user, &globex_item).await;
    let unknown = uuid::Uuid::now_v7().to_string();

    let with_files = |files: Json| {
        let mut body = ticket();
        body["data"]["attachments"] = files;
        body
    };
    let (status, problem) = new_item(
        &acme_user,
        &engagement,
        with_files(json!([own, theirs, unknown])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["attachments[1]", "attachments[2]"]);
    assert!(!problem.to_string().contains("Globex"), "{problem}");

    let (status, problem) = acme_user
        .post(
            &format!("/api/v1/engagements/{engagement}/items/batch"),
            json!({"items": [with_files(json!([theirs])), with_files(json!([own]))]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{problem}");
    assert_eq!(problem[0]["status"], 422);
    assert_eq!(problem[0]["errors"][0]["field"], "attachments[0]");
    assert_eq!(problem[1]["status"], 201);

    let (status, created) = new_item(&acme_user, &engagement, with_files(json!([own]))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["data"]["attachments"], json!([own]));
    let patch = acme_user
        .request(
            Method::PATCH,
            &format!("/api/v1/items/{}", created["id"].as_str().unwrap()),
        )
        .header(header::IF_MATCH, "\"1\"")
        .json(&json!({"data": {"attachments": [theirs]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The agent's form: another client's file cannot be handed in with the work.
    let worker = server.worker(&[acme]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let (status, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    let task = claimed["task"]["id"].as_str().unwrap();
    let submit = |files: Json| json!({"outcome": "noted", "data": {"reply": "Looked at it.", "files": files}});
    let (status, problem) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            submit(json!([theirs])),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "files[0]");
    let (status, item) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            submit(json!([own])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["data"]["files"], json!([own]));
}

// A streamed (chunked) body that runs past the limit: 413, and no file is kept. With a
// small limit, so that the test sends little.
mod streamed {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = delego_store::testing::Harness::sqlite().await;
        a_chunked_upload_over_the_limit_gets_413_and_leaves_no_file(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = delego_store::testing::Harness::postgres().await else {
            return;
        };
        a_chunked_upload_over_the_limit_gets_413_and_leaves_no_file(db).await;
    }
}

async fn a_chunked_upload_over_the_limit_gets_413_and_leaves_no_file(
    db: delego_store::testing::Harness,
) {
    let config = Config {
        max_attachment_bytes: SMALL_LIMIT,
        ..Config::default()
    };
    let server = TestServer::start_with(db, config).await;
    let acme = server.client("Acme").await;
    let engagement = server.engagement(acme).await;
    let user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let item = item_of(&user, &engagement).await;
    let token = token_of(&user).await;

    let over = png_of(SMALL_LIMIT as usize + 1);
    let head = raw_upload(&server, &item, &token, Framing::Chunked, &over).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        stored_files(&server).is_empty(),
        "{:?}",
        stored_files(&server)
    );
    let (_, listed) = user.get(&format!("/api/v1/items/{item}/attachments")).await;
    assert_eq!(listed, json!([]));

    // Exactly the limit, streamed the same way, is kept whole.
    let full = png_of(SMALL_LIMIT as usize);
    let head = raw_upload(&server, &item, &token, Framing::Chunked, &full).await;
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    let (_, listed) = user.get(&format!("/api/v1/items/{item}/attachments")).await;
    assert_eq!(listed[0]["size"], SMALL_LIMIT);
    assert_eq!(stored_files(&server).len(), 1);
}

async fn token_of(session: &Session) -> String {
    let (status, token) = session.post("/api/v1/tokens", json!({"name": "raw"})).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    token["secret"].as_str().unwrap().to_owned()
}

enum Framing {
    /// Announce this length but send no body.
    Announced(u64),
    /// Send the bytes in 8 KiB chunks with `Transfer-Encoding: chunked`.
    Chunked,
}

/// Uploads a PNG over a raw connection, for framings a client library hides; returns the
/// start of the response.
async fn raw_upload(
    server: &TestServer,
    item: &str,
    token: &str,
    framing: Framing,
    bytes: &[u8],
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let length = match framing {
        Framing::Announced(length) => format!("Content-Length: {length}"),
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST /api/v1/items/{item}/attachments?filename=big.png HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: image/png\r\nAuthorization: Bearer {token}\r\n{length}\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let body = bytes.to_vec();
    let chunked = matches!(framing, Framing::Chunked);
    // Written beside the read: the server may answer (and stop reading) mid-body.
    let sender = tokio::spawn(async move {
        if chunked {
            for chunk in body.chunks(8 * 1024) {
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
            }
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
        // Keep the write half open until the answer is read.
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(20), reader.read(&mut buffer))
                .await
                .expect("the server answers")
                .unwrap();
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    sender.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

//! The server's hand-framed `Join` stream seen from a raw gRPC client:
//! malformed, oversized and compressed messages and unknown methods end the
//! call with a clear status and leave no client behind; an instruction over
//! the limit fails the round with a reason.

use bytes::{Buf, BufMut};
use fl::client::{ClientOptions, run_client};
use fl::server::{ClientManager, FlServer, FlowerSvc, ServerConfig, ServerRecorder};
use fl::strategy::StrategyConfig;
use fl::{Config, EvaluateOutcome, FitOutcome, Tensor, Trainer, TrainerError};
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

/// Sends and receives message bodies as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

/// Serves `FlowerSvc` alone on loopback; returns its address and clients.
async fn serve(limit: usize) -> (String, Arc<ClientManager>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let manager = Arc::new(ClientManager::default());
    let svc = FlowerSvc::new(manager.clone(), limit);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, manager)
}

/// Opens `path` on the server, sends `messages`, and returns the status
/// that ends the call.
async fn call(addr: &str, path: &'static str, messages: Vec<Vec<u8>>) -> Status {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    // Keep the request side open: the server must end the call by itself.
    let outbound =
        tokio_stream::StreamExt::chain(tokio_stream::iter(messages), tokio_stream::pending());
    let response = grpc
        .streaming(
            tonic::Request::new(outbound),
            http::uri::PathAndQuery::from_static(path),
            RawCodec,
        )
        .await;
    let mut inbound = match response {
        Ok(r) => r.into_inner(),
        Err(status) => return status,
    };
    loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => return Status::ok(""),
            Err(status) => return status,
        }
    }
}

const JOIN: &str = "/flwr.proto.FlowerService/Join";

#[tokio::test]
async fn a_malformed_message_ends_the_call_and_unregisters_the_client() {
    let (addr, manager) = serve(1 << 20).await;
    let status = call(&addr, JOIN, vec![vec![0xff; 40]]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("malformed ClientMessage"),
        "{status:?}"
    );
    assert_eq!(manager.len(), 0);
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_before_it_is_read() {
    let (addr, manager) = serve(1000).await;
    let status = call(&addr, JOIN, vec![vec![0; 2000]]).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("message of 2000 bytes is over the server's limit of 1000 bytes"),
        "{status:?}"
    );
    assert_eq!(manager.len(), 0);
}

#[tokio::test]
async fn an_unknown_method_is_unimplemented() {
    let (addr, manager) = serve(1000).await;
    let status = call(&addr, "/flwr.proto.FlowerService/Leave", Vec::new()).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(status.message().contains(JOIN), "{status:?}");
    assert_eq!(manager.len(), 0);
}

#[tokio::test]
async fn a_well_formed_client_stays_registered() {
    let (addr, manager) = serve(1000).await;
    let waiter = manager.clone();
    let call = tokio::spawn(async move { call(&addr, JOIN, Vec::new()).await });
    assert!(waiter.wait_for(1, std::time::Duration::from_secs(10)).await);
    assert!(!call.is_finished());
    // Dropping the server's handles ends the call with OK.
    drop(manager.clear());
    assert_eq!(call.await.unwrap().code(), Code::Ok);
}

/// Answers with what it got; it should never be asked here.
struct Echo;

impl Trainer for Echo {
    fn get_parameters(&mut self, _: &Config) -> Result<Vec<Tensor>, TrainerError> {
        Ok(Vec::new())
    }
    fn fit(&mut self, p: Vec<Tensor>, _: &Config) -> Result<FitOutcome, TrainerError> {
        Ok(FitOutcome {
            parameters: p,
            num_examples: 1,
            metrics: Config::new(),
        })
    }
    fn evaluate(&mut self, _: Vec<Tensor>, _: &Config) -> Result<EvaluateOutcome, TrainerError> {
        Ok(EvaluateOutcome {
            loss: 0.0,
            num_examples: 1,
            metrics: Config::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instruction_over_the_limit_fails_the_round_with_the_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = ServerConfig {
        rounds: 1,
        max_message_bytes: 300,
        ..ServerConfig::default()
    };
    let model = vec![Tensor::zeros(vec![100])];
    let run = tokio::spawn(FlServer::new(config, ServerRecorder::detached()).run(
        listener,
        StrategyConfig::Fedavg.build(),
        Some(model),
        None,
    ));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                run_client(&addr, Box::new(Echo), &ClientOptions::default()).await
            })
        })
        .collect();
    let err = run.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("fit: 2 of 2 clients failed")
            && err.contains("over the message limit of 300 bytes"),
        "{err}"
    );
    for c in clients {
        assert_eq!(c.await.unwrap().unwrap().fits, 0);
    }
}

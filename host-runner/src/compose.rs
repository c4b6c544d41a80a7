//! In-process composition: plug components into a socket component's
//! imports with wac-graph (the library behind `wac plug`), so
//! `host-runner serve http-api.wasm --plug vector-processor.wasm` needs no
//! separate composition step. Inputs are bytes, already read or pulled and
//! verified (`registry`), so files and registry references compose alike.

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// A component to compose: how messages name it, and its bytes.
#[derive(Debug, Clone)]
pub struct Input {
    /// A path or a registry reference.
    pub name: String,
    /// The component.
    pub bytes: Vec<u8>,
}

/// Why a composition failed; every variant names the component involved.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A component wac cannot use.
    #[error("{name} is not a usable component: {message}")]
    NotAComponent {
        /// The component.
        name: String,
        /// wac's explanation.
        message: String,
    },
    /// No export of a plug matches an import of the socket.
    #[error("{plug} exports nothing that {socket} imports")]
    NothingPlugged {
        /// The socket.
        socket: String,
        /// The plug.
        plug: String,
    },
    /// wac-graph refused the composition.
    #[error("composing {socket} failed: {message}")]
    Graph {
        /// The socket.
        socket: String,
        /// wac's explanation, with causes.
        message: String,
    },
}

/// Plugs each of `plugs` into `socket` (in order) and returns the encoded,
/// validated composition. Every plug must satisfy at least one import.
pub fn plug(socket: &Input, plugs: &[Input]) -> Result<Vec<u8>, ComposeError> {
    let mut graph = CompositionGraph::new();
    let not_component = |input: &Input, e: &dyn std::fmt::Display| ComposeError::NotAComponent {
        name: input.name.clone(),
        message: e.to_string(),
    };
    let socket_pkg = Package::from_bytes("socket", None, socket.bytes.clone(), graph.types_mut())
        .map_err(|e| not_component(socket, &e))?;
    let socket_id = graph
        .register_package(socket_pkg)
        .map_err(|e| not_component(socket, &e))?;
    let mut ids = Vec::new();
    for (i, input) in plugs.iter().enumerate() {
        let pkg = Package::from_bytes(
            &format!("plug{i}"),
            None,
            input.bytes.clone(),
            graph.types_mut(),
        )
        .map_err(|e| not_component(input, &e))?;
        let exports: Vec<String> = graph.types()[pkg.ty()].exports.keys().cloned().collect();
        let imports: Vec<String> = graph.types()[graph[socket_id].ty()]
            .imports
            .keys()
            .cloned()
            .collect();
        let unversioned = |s: &str| s.split('@').next().unwrap_or(s).to_string();
        if !exports
            .iter()
            .any(|e| imports.iter().any(|i| unversioned(i) == unversioned(e)))
        {
            return Err(ComposeError::NothingPlugged {
                socket: socket.name.clone(),
                plug: input.name.clone(),
            });
        }
        ids.push(
            graph
                .register_package(pkg)
                .map_err(|e| not_component(input, &e))?,
        );
    }
    let graph_error = |e: &dyn std::error::Error| {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ComposeError::Graph {
            socket: socket.name.clone(),
            message,
        }
    };
    wac_graph::plug(&mut graph, ids, socket_id).map_err(|e| graph_error(&e))?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| graph_error(&e))
}

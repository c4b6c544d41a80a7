//! In-process composition: plug components into a socket component's
//! imports with wac-graph (the library behind `wac plug`), so
//! `host-runner serve http-api.wasm --plug vector-processor.wasm` needs no
//! separate composition step.

use std::path::{Path, PathBuf};

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// Why a composition failed; every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a component wac can use.
    #[error("{path} is not a usable component: {message}")]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// wac's explanation.
        message: String,
    },
    /// No export of a plug matches an import of the socket.
    #[error("{plug} exports nothing that {socket} imports")]
    NothingPlugged {
        /// The socket.
        socket: PathBuf,
        /// The plug.
        plug: PathBuf,
    },
    /// wac-graph refused the composition.
    #[error("composing {socket} failed: {message}")]
    Graph {
        /// The socket.
        socket: PathBuf,
        /// wac's explanation, with causes.
        message: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, ComposeError> {
    std::fs::read(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Plugs each of `plugs` into `socket` (in order) and returns the encoded,
/// validated composition. Every plug must satisfy at least one import.
pub fn plug(socket: &Path, plugs: &[PathBuf]) -> Result<Vec<u8>, ComposeError> {
    let mut graph = CompositionGraph::new();
    let not_component = |path: &Path, e: &dyn std::fmt::Display| ComposeError::NotAComponent {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let socket_pkg = Package::from_bytes("socket", None, read(socket)?, graph.types_mut())
        .map_err(|e| not_component(socket, &e))?;
    let socket_id = graph
        .register_package(socket_pkg)
        .map_err(|e| not_component(socket, &e))?;
    let mut ids = Vec::new();
    for (i, path) in plugs.iter().enumerate() {
        let pkg = Package::from_bytes(&format!("plug{i}"), None, read(path)?, graph.types_mut())
            .map_err(|e| not_component(path, &e))?;
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
                socket: socket.to_path_buf(),
                plug: path.clone(),
            });
        }
        ids.push(
            graph
                .register_package(pkg)
                .map_err(|e| not_component(path, &e))?,
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
            socket: socket.to_path_buf(),
            message,
        }
    };
    wac_graph::plug(&mut graph, ids, socket_id).map_err(|e| graph_error(&e))?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| graph_error(&e))
}

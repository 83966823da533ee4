//! A thin PostgreSQL connection on postgres-protocol's codecs.
//!
//! tokio-postgres has no replication protocol, so this speaks just enough of the
//! frontend/backend protocol for a walsender: startup with `replication=database`,
//! authentication (SCRAM-SHA-256, MD5, cleartext), the simple query protocol, and the
//! CopyBoth sub-protocol that START_REPLICATION switches to.
//!
//! The snapshot's readers use it too, as plain SQL sessions: `COPY … TO STDOUT` read
//! straight from the socket into the row decoder, with no task or channel between them
//! (tokio-postgres hands over one message at a time through its connection task).

use bytes::{Buf, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{PgError, ServerError};
use crate::tls::TlsSettings;

/// The connection's byte stream: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct ConnectParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub application_name: String,
    pub tls: TlsSettings,
}

impl ConnectParams {
    /// Reads the parameters from a tokio-postgres config (parsed from the configured URL).
    pub fn from_config(cfg: &tokio_postgres::Config, tls: &TlsSettings) -> Result<Self, PgError> {
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => {
                return Err(PgError::Config(format!(
                    "source.postgres.url: unix socket host {} is not supported; use a TCP host such as 127.0.0.1",
                    p.display()
                )))
            }
            None => "localhost".to_string(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let user = cfg.get_user().map(str::to_string).ok_or_else(|| {
            PgError::Config(
                "source.postgres.url has no user name; write it as postgres://USER@HOST:PORT/DB"
                    .into(),
            )
        })?;
        let password = cfg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let dbname = cfg.get_dbname().unwrap_or(&user).to_string();
        Ok(ConnectParams {
            host,
            port,
            user,
            password,
            dbname,
            application_name: cfg.get_application_name().unwrap_or("sluice").to_string(),
            tls: tls.clone(),
        })
    }
}

/// Result rows of a simple query, as text.
pub type TextRows = Vec<Vec<Option<String>>>;

/// An open replication connection.
pub struct ReplicationConn {
    stream: Box<dyn Stream>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    server_version: u32,
}

/// One backend message, with the CopyBothResponse that postgres-protocol does not know.
enum Backend {
    CopyBoth,
    Msg(Message),
}

/// SSLRequest, then the TLS handshake if the server accepts (or plain TCP when the mode
/// allows it).
async fn negotiate_tls(
    mut stream: TcpStream,
    p: &ConnectParams,
) -> Result<Box<dyn Stream>, PgError> {
    if p.tls.mode == crate::tls::TlsMode::Disable {
        return Ok(Box::new(stream));
    }
    let mut req = BytesMut::new();
    frontend::ssl_request(&mut req);
    stream.write_all(&req).await?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {
            let config = p.tls.client_config()?;
            let name = TlsSettings::server_name(&p.host)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| {
                    PgError::Config(format!(
                        "TLS handshake with PostgreSQL at {}:{} failed: {e}. Fix: check source.postgres.tls (ca_file must hold the CA that signed the server's certificate; verify-full also needs the certificate to name the host {:?})",
                        p.host, p.port, p.host
                    ))
                })?;
            Ok(Box::new(tls))
        }
        b'N' if !p.tls.mode.required() => Ok(Box::new(stream)),
        b'N' => Err(PgError::Config(format!(
            "PostgreSQL at {}:{} does not offer TLS, and source.postgres.tls.mode is {:?}. Fix: enable ssl on the server, or lower the mode",
            p.host, p.port, p.tls.mode
        ))),
        other => Err(PgError::protocol(
            "SSLRequest",
            format!("unexpected answer byte {other:#04x}"),
        )),
    }
}

/// Bytes read from the socket at a time while a COPY streams in.
const COPY_READ: usize = 256 * 1024;

impl ReplicationConn {
    /// A walsender session (`replication=database`).
    pub async fn connect(p: &ConnectParams) -> Result<Self, PgError> {
        Self::open(p, true).await
    }

    /// A plain SQL session, with the output settings every Sluice SQL session pins
    /// ([`crate::catalog::SESSION_SETTINGS`]).
    pub async fn connect_sql(p: &ConnectParams) -> Result<Self, PgError> {
        let mut conn = Self::open(p, false).await?;
        conn.simple_query(crate::catalog::SESSION_SETTINGS).await?;
        Ok(conn)
    }

    async fn open(p: &ConnectParams, replication: bool) -> Result<Self, PgError> {
        let addr = format!("{}:{}", p.host, p.port);
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|source| PgError::Connect {
                addr: addr.clone(),
                source,
            })?;
        stream.set_nodelay(true)?;
        let stream = negotiate_tls(stream, p).await?;
        let mut conn = ReplicationConn {
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(1024),
            server_version: 0,
        };
        let params: [(&str, &str); 9] = [
            ("user", &p.user),
            ("database", &p.dbname),
            (
                "replication",
                if replication { "database" } else { "false" },
            ),
            ("application_name", &p.application_name),
            // Output functions run in the walsender with these settings: pin them so
            // values are parsed the same way everywhere.
            ("DateStyle", "ISO, MDY"),
            ("TimeZone", "UTC"),
            ("extra_float_digits", "3"),
            ("IntervalStyle", "postgres"),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(params.iter().copied(), &mut conn.wbuf)?;
        conn.flush().await?;
        conn.authenticate(p).await?;
        Ok(conn)
    }

    /// The server's version number, e.g. 150004.
    pub fn server_version(&self) -> u32 {
        self.server_version
    }

    async fn authenticate(&mut self, p: &ConnectParams) -> Result<(), PgError> {
        let need_password = || {
            PgError::Config(format!(
                "PostgreSQL asks a password for user {:?}; set it in source.postgres.url or source.postgres.password_file",
                p.user
            ))
        };
        loop {
            match self.recv_msg("authentication").await? {
                Message::AuthenticationOk => break,
                Message::AuthenticationCleartextPassword => {
                    let pw = p.password.as_ref().ok_or_else(need_password)?;
                    frontend::password_message(pw.as_bytes(), &mut self.wbuf)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let pw = p.password.as_ref().ok_or_else(need_password)?;
                    let hash = md5_hash(p.user.as_bytes(), pw.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let pw = p.password.as_ref().ok_or_else(need_password)?;
                    let mut mechs = body.mechanisms();
                    let mut has_scram = false;
                    while let Some(m) = mechs.next()? {
                        has_scram |= m == SCRAM_SHA_256;
                    }
                    if !has_scram {
                        return Err(PgError::UnsupportedAuth(
                            "SASL without SCRAM-SHA-256".into(),
                        ));
                    }
                    let mut scram = ScramSha256::new(pw.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(
                        SCRAM_SHA_256,
                        scram.message(),
                        &mut self.wbuf,
                    )?;
                    self.flush().await?;
                    match self.recv_msg("SCRAM authentication").await? {
                        Message::AuthenticationSaslContinue(b) => scram.update(b.data())?,
                        other => return Err(unexpected("SCRAM authentication", &other)),
                    }
                    frontend::sasl_response(scram.message(), &mut self.wbuf)?;
                    self.flush().await?;
                    match self.recv_msg("SCRAM authentication").await? {
                        Message::AuthenticationSaslFinal(b) => scram.finish(b.data())?,
                        other => return Err(unexpected("SCRAM authentication", &other)),
                    }
                }
                Message::AuthenticationGss
                | Message::AuthenticationSspi
                | Message::AuthenticationKerberosV5
                | Message::AuthenticationScmCredential => {
                    return Err(PgError::UnsupportedAuth("GSS/SSPI/Kerberos".into()))
                }
                other => return Err(unexpected("authentication", &other)),
            }
        }
        // Parameter status and key data until ReadyForQuery.
        loop {
            match self.recv_msg("startup").await? {
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(ps) => {
                    if ps.name()? == "server_version_num" {
                        self.server_version = ps.value()?.parse().unwrap_or(0);
                    } else if ps.name()? == "server_version" && self.server_version == 0 {
                        self.server_version = parse_server_version(ps.value()?);
                    }
                }
                Message::BackendKeyData(_) | Message::NoticeResponse(_) => {}
                other => return Err(unexpected("startup", &other)),
            }
        }
    }

    /// Runs one statement with the simple query protocol and returns its rows as text.
    pub async fn simple_query(&mut self, sql: &str) -> Result<TextRows, PgError> {
        frontend::query(sql, &mut self.wbuf)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.recv(sql).await? {
                Backend::Msg(Message::ReadyForQuery(_)) => break,
                Backend::Msg(Message::DataRow(row)) => {
                    let buf = row.buffer();
                    let mut out = Vec::new();
                    let mut ranges = row.ranges();
                    while let Some(r) = ranges.next()? {
                        out.push(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                    }
                    rows.push(out);
                }
                Backend::Msg(Message::ErrorResponse(e)) => {
                    error = Some(Box::new(server_error(e.fields())?));
                }
                Backend::Msg(
                    Message::RowDescription(_)
                    | Message::CommandComplete(_)
                    | Message::EmptyQueryResponse
                    | Message::NoticeResponse(_)
                    | Message::ParameterStatus(_),
                ) => {}
                Backend::CopyBoth => {
                    return Err(PgError::protocol(sql, "unexpected CopyBothResponse"))
                }
                Backend::Msg(other) => return Err(unexpected(sql, &other)),
            }
        }
        match error {
            Some(error) => Err(PgError::Server {
                context: sql.to_string(),
                error,
            }),
            None => Ok(rows),
        }
    }

    /// Sends a command (START_REPLICATION) that switches to the CopyBoth sub-protocol.
    pub async fn start_copy_both(&mut self, sql: &str) -> Result<(), PgError> {
        self.start_copy(sql, sql, true).await
    }

    /// Starts `COPY … TO STDOUT`: returns once the server answers CopyOutResponse. The
    /// data then comes through [`Self::copy_out_read`]. `ctx` names the COPY in errors.
    pub async fn copy_out_start(&mut self, sql: &str, ctx: &str) -> Result<(), PgError> {
        self.start_copy(sql, ctx, false).await
    }

    /// Sends `sql` and waits for CopyBothResponse (`both`) or CopyOutResponse.
    async fn start_copy(&mut self, sql: &str, ctx: &str, both: bool) -> Result<(), PgError> {
        frontend::query(sql, &mut self.wbuf)?;
        self.flush().await?;
        loop {
            match self.recv(ctx).await? {
                Backend::CopyBoth if both => return Ok(()),
                Backend::Msg(Message::CopyOutResponse(_)) if !both => return Ok(()),
                Backend::Msg(Message::NoticeResponse(_) | Message::ParameterStatus(_)) => {}
                Backend::Msg(Message::ErrorResponse(e)) => {
                    let error = server_error(e.fields());
                    return Err(self.server_failure(error, ctx).await);
                }
                Backend::Msg(other) => return Err(unexpected(ctx, &other)),
                Backend::CopyBoth => {
                    return Err(PgError::protocol(ctx, "unexpected CopyBothResponse"))
                }
            }
        }
    }

    /// The server's error, once the connection is back at ReadyForQuery (so that it
    /// stays usable).
    async fn server_failure(&mut self, error: Result<ServerError, PgError>, ctx: &str) -> PgError {
        let error = match error {
            Ok(e) => Box::new(e),
            Err(e) => return e,
        };
        let _ = self.drain_to_ready(ctx).await;
        PgError::Server {
            context: ctx.to_string(),
            error,
        }
    }

    /// Hands the payload of every CopyData message already received, or else of those
    /// the next read of the socket completes, to `data`, in order; `false` once the
    /// COPY has ended (the server is ready for the next query). `ctx` names the COPY in
    /// errors.
    pub async fn copy_out_read(
        &mut self,
        ctx: &str,
        mut data: impl FnMut(&[u8]),
    ) -> Result<bool, PgError> {
        loop {
            let mut got = false;
            let mut need = 0;
            while let Some(len) = self.front_len(ctx)? {
                if self.rbuf.len() <= len {
                    need = len + 1;
                    break;
                }
                if self.rbuf[0] == b'd' {
                    data(&self.rbuf[5..len + 1]);
                    self.rbuf.advance(len + 1);
                    got = true;
                    continue;
                }
                match Message::parse(&mut self.rbuf)? {
                    Some(
                        Message::CopyDone
                        | Message::CommandComplete(_)
                        | Message::NoticeResponse(_)
                        | Message::ParameterStatus(_),
                    ) => {}
                    Some(Message::ReadyForQuery(_)) => return Ok(false),
                    Some(Message::ErrorResponse(e)) => {
                        let error = server_error(e.fields());
                        return Err(self.server_failure(error, ctx).await);
                    }
                    Some(other) => return Err(unexpected(ctx, &other)),
                    None => break,
                }
            }
            if got {
                return Ok(true);
            }
            let room = need.saturating_sub(self.rbuf.len()).max(COPY_READ);
            if self.rbuf.capacity() - self.rbuf.len() < room {
                self.rbuf.reserve(room);
            }
            let n = self.stream.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                return Err(PgError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("server closed the connection during {ctx}"),
                )));
            }
        }
    }

    /// Receives the next CopyData payload in CopyBoth mode; `None` once the server ends
    /// the copy. Cancel safe: partial reads stay buffered.
    pub async fn recv_copy(&mut self) -> Result<Option<Bytes>, PgError> {
        loop {
            match self.recv("replication").await? {
                Backend::Msg(Message::CopyData(d)) => return Ok(Some(d.into_bytes())),
                Backend::Msg(Message::CopyDone) => return Ok(None),
                Backend::Msg(Message::NoticeResponse(_) | Message::ParameterStatus(_)) => {}
                Backend::Msg(Message::ErrorResponse(e)) => {
                    return Err(PgError::Server {
                        context: "replication".into(),
                        error: Box::new(server_error(e.fields())?),
                    })
                }
                Backend::Msg(other) => return Err(unexpected("replication", &other)),
                Backend::CopyBoth => {
                    return Err(PgError::protocol("replication", "second CopyBothResponse"))
                }
            }
        }
    }

    /// Whether a whole message is already buffered: the next [`Self::recv_copy`] returns
    /// without reading the socket.
    pub fn message_buffered(&self) -> bool {
        self.rbuf.len() >= 5
            && self.rbuf.len()
                > u32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]])
                    as usize
    }

    /// Sends one CopyData message.
    pub async fn send_copy(&mut self, payload: &[u8]) -> Result<(), PgError> {
        frontend::CopyData::new(payload)?.write(&mut self.wbuf);
        self.flush().await
    }

    /// Ends CopyBoth mode cleanly: sends CopyDone, reads until the server's CopyDone and
    /// ReadyForQuery (so the last status update is processed), then terminates.
    pub async fn close_copy(mut self) -> Result<(), PgError> {
        frontend::copy_done(&mut self.wbuf);
        self.flush().await?;
        loop {
            match self.recv("closing replication").await? {
                Backend::Msg(Message::ReadyForQuery(_)) => break,
                Backend::Msg(Message::ErrorResponse(e)) => {
                    return Err(PgError::Server {
                        context: "closing replication".into(),
                        error: Box::new(server_error(e.fields())?),
                    })
                }
                _ => {}
            }
        }
        self.terminate().await
    }

    /// Sends Terminate and closes the socket.
    pub async fn terminate(mut self) -> Result<(), PgError> {
        frontend::terminate(&mut self.wbuf);
        self.flush().await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    async fn drain_to_ready(&mut self, ctx: &str) -> Result<(), PgError> {
        loop {
            if let Backend::Msg(Message::ReadyForQuery(_)) = self.recv(ctx).await? {
                return Ok(());
            }
        }
    }

    async fn flush(&mut self) -> Result<(), PgError> {
        self.stream.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        Ok(())
    }

    async fn recv_msg(&mut self, ctx: &str) -> Result<Message, PgError> {
        match self.recv(ctx).await? {
            Backend::Msg(Message::ErrorResponse(e)) => Err(PgError::Server {
                context: ctx.to_string(),
                error: Box::new(server_error(e.fields())?),
            }),
            Backend::Msg(m) => Ok(m),
            Backend::CopyBoth => Err(PgError::protocol(ctx, "unexpected CopyBothResponse")),
        }
    }

    /// The length field of the message at the front of the read buffer (the bytes after
    /// its tag), once its header is in; a length below 4 is a protocol error.
    fn front_len(&self, ctx: &str) -> Result<Option<usize>, PgError> {
        if self.rbuf.len() < 5 {
            return Ok(None);
        }
        let len =
            u32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]]) as usize;
        if len < 4 {
            return Err(PgError::protocol(
                ctx,
                format!("invalid message length {len}"),
            ));
        }
        Ok(Some(len))
    }

    async fn recv(&mut self, ctx: &str) -> Result<Backend, PgError> {
        loop {
            if let Some(len) = self.front_len(ctx)? {
                let tag = self.rbuf[0];
                if tag == b'W' {
                    if self.rbuf.len() > len {
                        self.rbuf.advance(len + 1);
                        return Ok(Backend::CopyBoth);
                    }
                } else if let Some(m) = Message::parse(&mut self.rbuf)? {
                    return Ok(Backend::Msg(m));
                }
                if self.rbuf.capacity() - self.rbuf.len() < len + 1 {
                    self.rbuf.reserve(len + 1);
                }
            }
            let n = self.stream.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                return Err(PgError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("server closed the connection during {ctx}"),
                )));
            }
        }
    }
}

fn parse_server_version(s: &str) -> u32 {
    let mut parts = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major * 10000 + minor
}

fn server_error(mut fields: ErrorFields<'_>) -> Result<ServerError, PgError> {
    let mut e = ServerError {
        severity: String::new(),
        code: String::new(),
        message: String::new(),
        detail: None,
        hint: None,
    };
    while let Some(f) = fields.next()? {
        let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'V' => e.severity = v,
            b'S' if e.severity.is_empty() => e.severity = v,
            b'C' => e.code = v,
            b'M' => e.message = v,
            b'D' => e.detail = Some(v),
            b'H' => e.hint = Some(v),
            _ => {}
        }
    }
    Ok(e)
}

fn unexpected(ctx: &str, m: &Message) -> PgError {
    let name = match m {
        Message::ErrorResponse(_) => "ErrorResponse",
        Message::DataRow(_) => "DataRow",
        Message::CopyData(_) => "CopyData",
        Message::CopyDone => "CopyDone",
        Message::ReadyForQuery(_) => "ReadyForQuery",
        Message::CommandComplete(_) => "CommandComplete",
        Message::RowDescription(_) => "RowDescription",
        Message::CopyOutResponse(_) => "CopyOutResponse",
        Message::CopyInResponse(_) => "CopyInResponse",
        _ => "another message",
    };
    PgError::protocol(ctx, format!("got {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose server side is `server` (bytes written to it are what the
    /// connection receives).
    fn conn_over(server: &[u8]) -> ReplicationConn {
        let (client, mut other) = tokio::io::duplex(1 << 20);
        let bytes = server.to_vec();
        tokio::spawn(async move {
            other.write_all(&bytes).await.unwrap();
            // Keep the other end open (and drain what the client writes).
            let mut sink = Vec::new();
            let _ = other.read_to_end(&mut sink).await;
        });
        ReplicationConn {
            stream: Box::new(client),
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            server_version: 0,
        }
    }

    /// A COPY started on a connection whose server answers CopyOutResponse, then sends
    /// `messages`.
    async fn copy_over(messages: &[Vec<u8>]) -> ReplicationConn {
        let server = [&[msg(b'H', &[1, 0, 0])], messages].concat().concat();
        let mut conn = conn_over(&server);
        conn.copy_out_start("COPY t TO STDOUT", "test copy")
            .await
            .unwrap();
        conn
    }

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend(((body.len() + 4) as u32).to_be_bytes());
        m.extend(body);
        m
    }

    async fn read_all(conn: &mut ReplicationConn) -> Result<Vec<Vec<u8>>, PgError> {
        let mut got = Vec::new();
        while conn
            .copy_out_read("test copy", |b| got.push(b.to_vec()))
            .await?
        {}
        Ok(got)
    }

    #[tokio::test]
    async fn copy_out_hands_over_every_payload_in_order_then_ends() {
        let mut conn = copy_over(&[
            msg(b'd', b"row one"),
            msg(b'N', b"SWARNING\0Mnote\0\0"),
            msg(b'd', b""),
            msg(b'd', &vec![7u8; 300_000]), // longer than one read
            msg(b'c', b""),
            msg(b'C', b"COPY 3\0"),
            msg(b'Z', b"T"),
        ])
        .await;
        let got = read_all(&mut conn).await.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], b"row one");
        assert!(got[1].is_empty());
        assert_eq!(got[2], vec![7u8; 300_000]);
    }

    #[tokio::test]
    async fn an_error_during_copy_names_the_copy_and_bad_framing_is_an_error() {
        let mut conn = copy_over(&[
            msg(b'd', b"row"),
            msg(b'E', b"SERROR\0C57014\0Mcanceling statement\0\0"),
            msg(b'Z', b"I"),
        ])
        .await;
        match read_all(&mut conn).await {
            Err(PgError::Server { context, error }) => {
                assert_eq!(context, "test copy");
                assert_eq!(error.code, "57014");
            }
            other => panic!("{other:?}"),
        }
        // A length below 4, and a connection that ends inside a message.
        for server in [vec![b'd', 0, 0, 0, 3], msg(b'd', b"cut")[..6].to_vec()] {
            let mut conn = copy_over(&[server]).await;
            drop(conn.stream.shutdown().await);
            assert!(read_all(&mut conn).await.is_err());
        }
    }

    #[test]
    fn parses_server_versions() {
        assert_eq!(super::parse_server_version("15.4 (Debian 15.4-1)"), 150004);
        assert_eq!(super::parse_server_version("18beta1"), 180001);
        assert_eq!(super::parse_server_version("junk"), 0);
    }
}

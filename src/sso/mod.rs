//! Single sign-on with OpenID Connect: the authorization code flow with PKCE, one
//! client per configured identity provider (`[[sso.providers]]`), through the
//! `openidconnect` crate over reqwest.
//!
//! A sign-in is two requests of the browser. `begin` makes the state, the nonce and
//! the PKCE verifier, stores them (`sso_logins`, single use, `LOGIN_TTL`) and
//! returns the provider's authorization URL. `finish`, on the callback, takes the
//! stored sign-in by its state (so a replayed or forged callback finds nothing),
//! checks it belongs to this provider, exchanges the code with the verifier and
//! verifies the ID token: signature against the provider's keys, issuer, audience,
//! expiry and nonce. Only then is the person looked up ([`accounts`]).
//!
//! Provider metadata (endpoints, keys) is discovered on first use and kept for
//! `DISCOVERY_TTL`, so the server starts while a provider is down, and a key the
//! provider rotated in is fetched when a signature does not verify.

pub mod accounts;
pub mod mapping;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::{SsoConfig, SsoProviderConfig};
use crate::db::repo::sso::LoginRow;
use crate::db::{repo, Db, DbError};
use crate::model::UserId;

/// How long a sign-in may stay at the provider's pages before its state is
/// refused: long enough for a password manager and a second factor.
pub const LOGIN_TTL_SECS: i64 = 10 * 60;
/// How long discovered metadata (endpoints and signing keys) is trusted.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(10 * 60);
/// One call to a provider (discovery, keys, token exchange).
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// What every sign-in asks for; a provider's `scopes` add to it.
const BASE_SCOPES: [&str; 2] = ["email", "profile"];

/// Every claim of the ID token that is not a standard one (`groups`, `roles`, …),
/// for the role rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ExtraClaims(pub serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for ExtraClaims {}

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a single sign-on did not happen. Each says what the person can do.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("no identity provider {0:?} is configured")]
    UnknownProvider(String),
    #[error("this sign-in link is unknown or was already used; start the sign-in again")]
    UnknownState,
    #[error("this sign-in took too long (more than {LOGIN_TTL_SECS} seconds); start it again")]
    Expired,
    #[error("this sign-in was started with another identity provider; start it again")]
    WrongProvider,
    #[error("the callback carries no authorization code")]
    MissingCode,
    #[error("the identity provider refused the sign-in: {0}")]
    ProviderRefused(String),
    #[error("the identity provider's ID token was refused: {0}")]
    BadIdToken(String),
    #[error("identity provider {provider:?} cannot be reached: {detail}")]
    Unreachable { provider: String, detail: String },
    #[error("the identity provider sent no usable email address for this account")]
    NoEmail,
    #[error("your account at {0} grants no role in NICEHR Remote Support; ask your IT team")]
    NoRole(String),
    #[error(
        "this account belongs to another hospital (or to NICEHR staff); sign in through \
         that organisation's own sign-in button"
    )]
    WrongHospital { user_id: UserId },
    #[error(
        "identity provider {0:?} is tied to a hospital that does not exist; tell your IT team"
    )]
    NoSuchHospital(String),
    #[error("this account or its hospital has been deactivated; ask your IT team")]
    Deactivated,
    #[error("another sign-in of this account is under way; try again")]
    Race,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

/// A provider as the sign-in page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub id: String,
    pub display_name: String,
}

/// What the callback carries (`code` and `state`, or `error`); `iss` when the
/// provider names itself (RFC 9207).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

/// A person the provider vouched for, with the verified ID token's claims.
#[derive(Debug, Clone)]
pub struct Verified {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

struct Provider {
    config: SsoProviderConfig,
    issuer: IssuerUrl,
    discovered: RwLock<Option<(Instant, Arc<CoreProviderMetadata>)>>,
}

/// The configured identity providers.
pub struct Sso {
    providers: Vec<Provider>,
    http: reqwest::Client,
}

/// Whether cached metadata will do or must be fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    Cached,
    Refetch,
}

impl Sso {
    pub fn new(config: &SsoConfig) -> Result<Sso, String> {
        mapping::check(config)?;
        let providers = config
            .providers
            .iter()
            .map(|p| {
                let issuer = IssuerUrl::new(p.issuer_url.clone())
                    .map_err(|e| format!("sso provider {:?}: issuer_url: {e}", p.id))?;
                Ok(Provider {
                    config: p.clone(),
                    issuer,
                    discovered: RwLock::new(None),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        // Redirects are not followed: a token endpoint that redirects is
        // misconfigured, and following it could send the code somewhere else.
        // No idle connections are kept: a sign-in makes a call every few seconds at
        // most, and a provider closing an idle connection just as it is reused
        // resets the code exchange (seen with Node's 5 s keep-alive).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| format!("sso HTTP client: {e}"))?;
        Ok(Sso { providers, http })
    }

    pub fn list(&self) -> Vec<ProviderView> {
        self.providers
            .iter()
            .map(|p| ProviderView {
                id: p.config.id.clone(),
                display_name: p.config.display_name.clone(),
            })
            .collect()
    }

    pub fn config(&self, id: &str) -> Result<&SsoProviderConfig, SsoError> {
        self.provider(id).map(|p| &p.config)
    }

    fn provider(&self, id: &str) -> Result<&Provider, SsoError> {
        self.providers
            .iter()
            .find(|p| p.config.id == id)
            .ok_or_else(|| SsoError::UnknownProvider(id.to_string()))
    }

    /// Starts a sign-in: stores its state, nonce and PKCE verifier, and returns the
    /// provider's authorization URL to send the browser to.
    pub async fn begin(
        &self,
        db: &Db,
        provider_id: &str,
        redirect_uri: &str,
    ) -> Result<url::Url, SsoError> {
        let provider = self.provider(provider_id)?;
        let client = self
            .client(provider, redirect_uri, Freshness::Cached)
            .await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in BASE_SCOPES
            .iter()
            .map(|s| s.to_string())
            .chain(provider.config.scopes.iter().cloned())
        {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, state, nonce) = request.url();
        let now = repo::now();
        repo::sso::insert_login(
            db,
            &LoginRow {
                state: state.secret().clone(),
                provider: provider.config.id.clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                redirect_uri: redirect_uri.to_string(),
                created_at: now,
                expires_at: now + chrono::Duration::seconds(LOGIN_TTL_SECS),
            },
        )
        .await?;
        Ok(url)
    }

    /// Completes a sign-in from the provider's callback: the stored state, the code
    /// exchange and the ID token's verification. Returns who the provider vouched for.
    pub async fn finish(
        &self,
        db: &Db,
        provider_id: &str,
        callback: Callback,
    ) -> Result<Verified, SsoError> {
        let provider = self.provider(provider_id)?;
        let state = callback.state.as_deref().filter(|s| !s.is_empty());
        let login = match state {
            Some(state) => repo::sso::take_login(db, state).await?,
            None => None,
        }
        .ok_or(SsoError::UnknownState)?;
        if login.provider != provider.config.id {
            return Err(SsoError::WrongProvider);
        }
        if login.expires_at <= repo::now() {
            return Err(SsoError::Expired);
        }
        if let Some(error) = callback.error {
            let detail = callback
                .error_description
                .map(|d| format!("{error} ({d})"))
                .unwrap_or(error);
            return Err(SsoError::ProviderRefused(detail));
        }
        if let Some(iss) = &callback.iss {
            if iss.trim_end_matches('/') != provider.issuer.as_str().trim_end_matches('/') {
                return Err(SsoError::BadIdToken(format!(
                    "the callback names issuer {iss:?}, not {:?}",
                    provider.issuer.as_str()
                )));
            }
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or(SsoError::MissingCode)?;
        let client = self
            .client(provider, &login.redirect_uri, Freshness::Cached)
            .await?;
        let exchange = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SsoError::Unreachable {
                provider: provider.config.id.clone(),
                detail: e.to_string(),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()));
        let response = exchange
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(&provider.config.id, e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SsoError::BadIdToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(login.nonce.clone());
        let verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &nonce) {
            Ok(claims) => claims.clone(),
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps a key rotated in since discovery: fetch the keys again, once.
                let client = self
                    .client(provider, &login.redirect_uri, Freshness::Refetch)
                    .await?;
                let verifier = client.id_token_verifier();
                let claims = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| SsoError::BadIdToken(e.to_string()))?
                    .clone();
                claims
            }
            Err(e) => return Err(SsoError::BadIdToken(e.to_string())),
        };
        let email = claims.email().map(|e| e.as_str().to_string()).or_else(|| {
            // Entra ID often sends the address only as the user name.
            claims
                .preferred_username()
                .map(|u| u.as_str().to_string())
                .filter(|u| u.contains('@'))
        });
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string());
        Ok(Verified {
            issuer: claims.issuer().as_str().to_string(),
            subject: claims.subject().as_str().to_string(),
            email,
            name,
            claims: claims.additional_claims().0.clone(),
        })
    }

    /// A client for the provider from its (cached or fresh) metadata.
    async fn client(
        &self,
        provider: &Provider,
        redirect_uri: &str,
        freshness: Freshness,
    ) -> Result<OidcClient, SsoError> {
        let metadata = self.metadata(provider, freshness).await?;
        let redirect =
            RedirectUrl::new(redirect_uri.to_string()).map_err(|e| SsoError::Unreachable {
                provider: provider.config.id.clone(),
                detail: format!("redirect URL {redirect_uri:?}: {e}"),
            })?;
        Ok(OidcClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(provider.config.client_id.clone()),
            Some(ClientSecret::new(provider.config.client_secret.0.clone())),
        )
        .set_redirect_uri(redirect))
    }

    async fn metadata(
        &self,
        provider: &Provider,
        freshness: Freshness,
    ) -> Result<Arc<CoreProviderMetadata>, SsoError> {
        if freshness == Freshness::Cached {
            if let Some((at, metadata)) = provider.discovered.read().await.as_ref() {
                if at.elapsed() < DISCOVERY_TTL {
                    return Ok(metadata.clone());
                }
            }
        }
        let metadata = CoreProviderMetadata::discover_async(provider.issuer.clone(), &self.http)
            .await
            .map_err(|e| SsoError::Unreachable {
                provider: provider.config.id.clone(),
                detail: error_chain(&e),
            })?;
        let metadata = Arc::new(metadata);
        *provider.discovered.write().await = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }
}

/// A failed code exchange: the provider's own refusal (a used or foreign code, a
/// wrong verifier) is the person's to retry; anything else is the provider being
/// unreachable or broken.
fn token_error<E: std::error::Error + 'static>(
    provider: &str,
    e: RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>,
) -> SsoError {
    match e {
        RequestTokenError::ServerResponse(refusal) => {
            let mut text = refusal.error().to_string();
            if let Some(description) = refusal.error_description() {
                text.push_str(&format!(" ({description})"));
            }
            SsoError::ProviderRefused(text)
        }
        other => SsoError::Unreachable {
            provider: provider.to_string(),
            detail: error_chain(&other),
        },
    }
}

/// An error with its causes, for the log and the 503's message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;

namespace NbdFast.TestSupport;

/// <summary>
/// A throw-away PKI made with openssl, once per test run: a CA, a server certificate for localhost
/// (SAN DNS:localhost, IP:127.0.0.1), client certificates for alice and bob signed by that CA, and a client
/// certificate for mallory signed by an unrelated CA. Laid out in directories as nbdkit, libnbd and qemu
/// expect them (server-cert.pem, server-key.pem, ca-cert.pem, client-cert.pem, client-key.pem).
/// </summary>
public sealed class TestPki
{
    private static readonly Lazy<TestPki> Instance = new(() => new TestPki(), LazyThreadSafetyMode.ExecutionAndPublication);

    private TestPki()
    {
        Root = Directory.CreateTempSubdirectory("nbdfast-pki-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        string work = Dir("work");
        MakeCa(work, "ca", "NbdFast Test CA");
        MakeCa(work, "other-ca", "Some Other CA");
        MakeLeaf(work, "server", "ca", "localhost",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n");
        string client = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
        MakeLeaf(work, "alice", "ca", "alice", client);
        MakeLeaf(work, "bob", "ca", "bob", client);
        MakeLeaf(work, "mallory", "other-ca", "mallory", client);
        MakeLeaf(work, "carol", "ca", "Carol Client", client + "subjectAltName=DNS:carol.example.com,email:carol@example.com\n");

        ServerDirectory = Dir("server");
        Copy(work, "ca-cert.pem", ServerDirectory, "ca-cert.pem");
        Copy(work, "server-cert.pem", ServerDirectory, "server-cert.pem");
        Copy(work, "server-key.pem", ServerDirectory, "server-key.pem");

        ClientNoCertDirectory = Dir("client-nocert");
        Copy(work, "ca-cert.pem", ClientNoCertDirectory, "ca-cert.pem");
        AliceDirectory = ClientDir("alice", work, "alice");
        BobDirectory = ClientDir("bob", work, "bob");
        MalloryDirectory = ClientDir("mallory", work, "mallory");
        CarolDirectory = ClientDir("carol", work, "carol");
    }

    /// <summary>The PKI of this test run (made on first use).</summary>
    public static TestPki Shared => Instance.Value;

    public string Root { get; }

    /// <summary>server-cert.pem, server-key.pem and ca-cert.pem: what <c>nbdfast --tls-certificates</c> reads.</summary>
    public string ServerDirectory { get; }

    /// <summary>Only ca-cert.pem: a client that verifies the server but has no certificate of its own.</summary>
    public string ClientNoCertDirectory { get; }

    /// <summary>ca-cert.pem plus alice's client-cert.pem/client-key.pem (CN=alice, signed by the CA).</summary>
    public string AliceDirectory { get; }

    /// <summary>ca-cert.pem plus bob's certificate (CN=bob, signed by the CA).</summary>
    public string BobDirectory { get; }

    /// <summary>ca-cert.pem plus mallory's certificate, signed by an unrelated CA.</summary>
    public string MalloryDirectory { get; }

    /// <summary>ca-cert.pem plus carol's certificate (CN=Carol Client, SAN DNS:carol.example.com and email:carol@example.com).</summary>
    public string CarolDirectory { get; }

    public string CaCertificatePath => Path.Combine(ServerDirectory, "ca-cert.pem");

    /// <summary>The certificate of the unrelated CA that signed mallory's certificate.</summary>
    public string OtherCaCertificatePath => Path.Combine(Root, "work", "other-ca-cert.pem");

    /// <summary>The client directory by short name: nocert, alice, bob, mallory.</summary>
    public string ClientDirectory(string name) => name switch
    {
        "nocert" => ClientNoCertDirectory,
        "alice" => AliceDirectory,
        "bob" => BobDirectory,
        "mallory" => MalloryDirectory,
        "carol" => CarolDirectory,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    /// <summary>The server certificate with its key, loaded the way the CLI's TlsLoader does.</summary>
    public X509Certificate2 LoadServerCertificate()
    {
        using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(
            Path.Combine(ServerDirectory, "server-cert.pem"), Path.Combine(ServerDirectory, "server-key.pem"));
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The test CA as a collection (for ClientCertificateAuthorities).</summary>
    public X509Certificate2Collection LoadCaCollection()
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPemFile(CaCertificatePath);
        return collection;
    }

    /// <summary>A client certificate with its key (for a .NET SslStream client).</summary>
    public X509Certificate2 LoadClientCertificate(string name)
    {
        string directory = ClientDirectory(name);
        using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(
            Path.Combine(directory, "client-cert.pem"), Path.Combine(directory, "client-key.pem"));
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    private string Dir(string name) => Directory.CreateDirectory(Path.Combine(Root, name)).FullName;

    private string ClientDir(string name, string work, string leaf)
    {
        string directory = Dir("client-" + name);
        Copy(work, "ca-cert.pem", directory, "ca-cert.pem");
        Copy(work, leaf + "-cert.pem", directory, "client-cert.pem");
        Copy(work, leaf + "-key.pem", directory, "client-key.pem");
        return directory;
    }

    private static void Copy(string from, string name, string to, string newName) =>
        File.Copy(Path.Combine(from, name), Path.Combine(to, newName));

    private static void MakeCa(string work, string name, string commonName) =>
        OpenSsl(work, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + "-key.pem", "-out", name + "-cert.pem", "-days", "3", "-subj", "/CN=" + commonName,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");

    private static void MakeLeaf(string work, string name, string ca, string commonName, string extensions)
    {
        File.WriteAllText(Path.Combine(work, name + ".ext"), extensions);
        OpenSsl(work, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + "-key.pem", "-out", name + ".csr", "-subj", "/CN=" + commonName);
        OpenSsl(work, "x509", "-req", "-in", name + ".csr", "-CA", ca + "-cert.pem", "-CAkey", ca + "-key.pem",
            "-set_serial", "0x" + Convert.ToHexString(Guid.NewGuid().ToByteArray().AsSpan(0, 8)),
            "-days", "2", "-extfile", name + ".ext", "-out", name + "-cert.pem");
    }

    private static void OpenSsl(string workingDirectory, params string[] arguments)
    {
        var info = new ProcessStartInfo("openssl")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(info) ?? throw new InvalidOperationException("cannot start openssl");
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
            throw new TimeoutException("openssl " + string.Join(' ', arguments) + " timed out");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"openssl {string.Join(' ', arguments)} failed with {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
        }
    }
}

# perl_work.pl - hash-heavy Perl for tests/integration/perl.sh: builds,
# nests, sorts and deletes from large hashes; prints digests (sorted keys,
# so the hash seed does not matter).
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $seed = 42;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }

my %h;
for my $i (0 .. 149_999) {
	my $k = sprintf("k%06d-%x", $i, rnd());
	$h{$k} = { i => $i, s => "x" x ($i % 41), l => [ map { $_ * $i } 0 .. ($i % 7) ] };
}
print "keys ", scalar(keys %h), " ", md5_hex(join(",", sort keys %h)), "\n";

my %inv;
for my $k (keys %h) {
	push @{ $inv{ $h{$k}{i} % 1000 } }, $k;
}
my $d = Digest::MD5->new;
for my $b (sort { $a <=> $b } keys %inv) {
	$d->add($b, ":", join(",", sort @{ $inv{$b} }), ";");
}
print "buckets ", scalar(keys %inv), " ", $d->hexdigest, "\n";

my $n = 0;
for my $k (sort keys %h) {
	delete $h{$k} if ++$n % 3 == 0;
}
for my $i (0 .. 99_999) {
	$h{"new$i"} = join("", map { chr(97 + (rnd() % 26)) } 1 .. (1 + $i % 30));
}
my $sum = 0;
for my $k (sort keys %h) {
	my $v = $h{$k};
	$sum += ref $v ? $v->{i} + scalar(@{ $v->{l} }) : length $v;
}
print "after churn ", scalar(keys %h), " sum $sum\n";

my @words = map { $h{$_} } grep { /^new/ } keys %h;
my %count;
$count{$_}++ for map { substr($_, 0, 2) } @words;
print "prefixes ", scalar(keys %count), " ", md5_hex(join(",", map { "$_=$count{$_}" } sort keys %count)), "\n";
my $text = join(" ", sort @words);
my @parts = split /a/, $text;
print "text ", length($text), " parts ", scalar(@parts), " ", md5_hex($text), "\n";
